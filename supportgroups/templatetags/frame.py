"""The frame of every page (base.html) asks for the same addresses on every request: its
stylesheet and scripts (``{% static %}``) and its navigation's links (``{% url %}``
without arguments). They are the same for everyone, so each is worked out once per
process (issue 22: the fixed cost of a page) and then read from memory. Nothing about the
person or the request is kept: the key is the name asked for, with the URL prefix and
URL configuration in force (tests may change those)."""

import functools

from django import template
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()


@functools.lru_cache(maxsize=256)
def _static(path: str) -> str:
    return static(path)


@functools.lru_cache(maxsize=256)
def _url(script_prefix: str, urlconf: str | None, name: str) -> str:
    return reverse(name, urlconf=urlconf)


@register.simple_tag
def frame_static(path: str) -> str:
    """``{% frame_static 'css/site.css' %}``: what ``{% static %}`` gives, once."""
    return _static(path)


@register.simple_tag
def frame_url(name: str) -> str:
    """``{% frame_url 'home' %}``: what ``{% url 'home' %}`` gives (no arguments), once."""
    return _url(get_script_prefix(), get_urlconf(), name)
