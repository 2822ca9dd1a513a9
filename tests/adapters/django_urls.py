"""The Django URL configuration of ``test_django.py``: each test sets its routes."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
