from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "screening"

    def ready(self) -> None:
        # The navigation's "My applications (n new)", asked with the page's other facts.
        from accounts.facts import page_fact_register
        from screening.selectors import applications_with_news_fact

        page_fact_register("application_news", applications_with_news_fact)
