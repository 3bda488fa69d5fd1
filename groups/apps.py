from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"

    def ready(self) -> None:
        # Models are loaded only now; accounts asks this when deciding who needs 2FA.
        from accounts.roles import two_factor_role_register
        from groups.selectors import user_facilitates_any_group

        two_factor_role_register("facilitator", user_facilitates_any_group)
