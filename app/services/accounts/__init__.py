"""Accounts: registration, sign-in sessions with rotating refresh tokens, profile and address book."""

from app.services.accounts.profile import (
    AddressFields,
    add_address,
    address_values,
    create_user,
    register,
    remove_address,
    update_address,
    update_profile,
)
from app.services.accounts.sessions import (
    SignedIn,
    change_password,
    login,
    login_account_bucket,
    login_ip_bucket,
    logout,
    refresh,
)

__all__ = [
    "AddressFields",
    "SignedIn",
    "add_address",
    "address_values",
    "change_password",
    "create_user",
    "login",
    "login_account_bucket",
    "login_ip_bucket",
    "logout",
    "refresh",
    "register",
    "remove_address",
    "update_address",
    "update_profile",
]
