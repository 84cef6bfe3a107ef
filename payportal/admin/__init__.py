"""The operator console under /admin: merchants with their status and volume, approval,
suspension and deactivation (audit logged), and a read-only view of any merchant's payments."""


def includeme(config):
    from payportal.admin.resources import AdminMerchantCollection

    config.add_resource_child("admin", "merchants", AdminMerchantCollection)
