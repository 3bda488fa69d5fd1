from django.conf import settings


def site(request):
    return {"SITE_NAME": settings.SITE_NAME, "QUICK_EXIT_URL": settings.QUICK_EXIT_URL}


def application_news(request):
    """How many of the person's applications changed since they last looked (in-app news)."""
    from screening.selectors import applications_with_news

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from groups.selectors import user_facilitates_any_group

    return {
        "APPLICATION_NEWS": applications_with_news(user),
        "FACILITATES": user_facilitates_any_group(user),
    }
