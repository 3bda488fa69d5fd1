"""The frame of every page (base.html) asks for the same addresses on every request: its
stylesheet and scripts (``{% static %}``) and its navigation's links (``{% url %}``
without arguments). They are the same for everyone, so each is worked out once per
process (issue 22: the fixed cost of a page) and then read from memory. Nothing about the
person or the request is kept: the key is the name asked for, with the URL prefix and
URL configuration in force; a change of a setting they are worked out from (tests
override them) forgets them all."""

import functools

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse

register = template.Library()

# What ``{% static %}`` reads: the prefix and the storage (a manifest storage gives the
# hashed names, or the plain ones under DEBUG), and whether staticfiles is installed.
STATIC_SETTINGS = frozenset(
    {"STATIC_URL", "STATIC_ROOT", "STORAGES", "STATICFILES_DIRS", "DEBUG", "INSTALLED_APPS"}
)
# What ``{% url %}`` reads beyond the key: the project's URL configuration.
URL_SETTINGS = frozenset({"ROOT_URLCONF", "INSTALLED_APPS"})


@functools.lru_cache(maxsize=256)
def _static(path: str) -> str:
    # Not keyed by the request's script prefix: the staticfiles storage reads STATIC_URL
    # (a relative one below SCRIPT_NAME / FORCE_SCRIPT_NAME) once, when it is made, so
    # Django's own tag gives one address per name until a static setting changes.
    return static(path)


@functools.lru_cache(maxsize=256)
def _url(script_prefix: str, urlconf: str | None, name: str) -> str:
    return reverse(name, urlconf=urlconf)


@receiver(setting_changed)
def _forget_on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting in STATIC_SETTINGS:
        _static.cache_clear()
    if setting in URL_SETTINGS:
        _url.cache_clear()


@register.simple_tag
def frame_static(path: str) -> str:
    """``{% frame_static 'css/site.css' %}``: what ``{% static %}`` gives, once."""
    return _static(path)


@register.simple_tag
def frame_url(name: str) -> str:
    """``{% frame_url 'home' %}``: what ``{% url 'home' %}`` gives (no arguments), once."""
    return _url(get_script_prefix(), get_urlconf(), name)
