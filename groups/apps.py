from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"

    def ready(self) -> None:
        # Models are loaded only now; accounts asks this when deciding who needs 2FA.
        from accounts.facts import page_fact_register
        from accounts.roles import two_factor_role_register
        from groups.selectors import facilitates_any_group_fact, user_facilitates_any_group

        two_factor_role_register(
            "facilitator", user_facilitates_any_group, facilitates_any_group_fact
        )
        # The navigation's "Facilitate" link.
        page_fact_register("facilitates_any_group", facilitates_any_group_fact)
