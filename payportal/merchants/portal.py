"""The dashboard's account pages: sign up and in, a forgotten password, settings, API keys.

Every change goes through the identity services the API uses (throttling included)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.view import view_config, view_defaults

from payportal.errors import PayportalError, RateLimited
from payportal.merchants import credentials, mail, services
from payportal.merchants.credentials import RecordedFailure
from payportal.merchants.models import Merchant, MerchantType
from payportal.merchants.resources import ApiKeyCollection, ApiKeyResource
from payportal.merchants.schemas import (
    ChangePassword,
    CreateApiKey,
    ForgotPassword,
    Login,
    ProfileUpdate,
    RegisterMerchant,
    ResetPassword,
)
from payportal.portal.forms import (
    GENERAL,
    FormInvalid,
    errors_from_domain,
    form_values,
    optional,
    validate,
)
from payportal.portal.resources import Developers, MerchantSettings
from payportal.portal.sessions import MERCHANT, revoke_merchant_sessions, sign_in, sign_out
from payportal.portal.templating import url
from payportal.resources import PortalRoot
from payportal.security import Permission

SIGNUP_FIELDS = (
    "name",
    "email",
    "password",
    "merchant_type",
    "business_name",
    "business_id",
    "phone",
    "address",
    "website",
    "country",
)
PROFILE_FIELDS = ("name", "phone", "address", "website", "business_name")
KEYS_PAGE = 100


def safe_next(request, target: str) -> str:
    """Only a dashboard path of this site: never an open redirect to somewhere else."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard/"):
        return f"{request.application_url}/dashboard/home"
    return request.application_url + target


def throttled(exc: RateLimited) -> dict[str, str]:
    minutes = max(1, round(exc.retry_after / 60))
    return {GENERAL: f"Too many failed attempts. Try again in about {minutes} minute(s)."}


@view_defaults(route_name="portal", context=PortalRoot, permission=Permission.PUBLIC)
class SignInPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(name="login", request_method="GET", renderer="merchants/login.jinja2")
    def login_form(self):
        if self.request.identity is not None:
            return HTTPSeeOther(location=url(self.request, "portal", "home"))
        return {"values": {"next": self.request.GET.get("next", "")}, "errors": {}}

    @view_config(name="login", request_method="POST", renderer="merchants/login.jinja2")
    def login(self):
        values = form_values(self.request, "email", "password", "next")
        try:
            body = validate(Login, {"email": values["email"], "password": values["password"]})
            merchant = services.authenticate_merchant(
                self.request.dbsession, self.request.app_settings, body.email, body.password
            )
        except FormInvalid as exc:
            return self._failed(422, values, exc.errors)
        except RateLimited as exc:
            self.request.response.headers["Retry-After"] = str(exc.retry_after)
            return self._failed(429, values, throttled(exc))
        except PayportalError as exc:
            if not isinstance(exc, RecordedFailure):
                raise
            # answered without raising: the counted failure must commit for throttling to work
            return self._failed(exc.status, values, {GENERAL: "Email or password is incorrect."})
        response = HTTPSeeOther(location=safe_next(self.request, values["next"]))
        sign_in(self.request, response, MERCHANT, merchant.id)
        return response

    @view_config(name="signup", request_method="GET", renderer="merchants/signup.jinja2")
    def signup_form(self):
        return self._signup({"merchant_type": "business"}, {})

    @view_config(name="signup", request_method="POST", renderer="merchants/signup.jinja2")
    def signup(self):
        values = form_values(self.request, *SIGNUP_FIELDS)
        try:
            data = validate(RegisterMerchant, optional(values, *SIGNUP_FIELDS))
            merchant = services.register_merchant(
                self.request.dbsession,
                self.request.app_settings,
                **data.model_dump(exclude_none=True),
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self._signup(values, exc.errors)
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            return self._signup(values, errors_from_domain(exc))
        response = HTTPSeeOther(location=url(self.request, "portal", "home", notice="signed_up"))
        sign_in(self.request, response, MERCHANT, merchant.id)
        return response

    @view_config(name="forgot-password", request_method="GET", renderer="merchants/forgot.jinja2")
    def forgot_form(self):
        return {"values": {}, "errors": {}, "sent": False}

    @view_config(name="forgot-password", request_method="POST", renderer="merchants/forgot.jinja2")
    def forgot(self):
        values = form_values(self.request, "email")
        try:
            body = validate(ForgotPassword, values)
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return {"values": values, "errors": exc.errors, "sent": False}
        settings = self.request.app_settings
        message = services.request_password_reset(self.request.dbsession, settings, body.email)
        if message is not None:
            mail.deliver_after_commit(self.request.tm.get(), settings, message)
        # the same answer whether or not the address has an account
        return {"values": values, "errors": {}, "sent": True}

    @view_config(name="reset-password", request_method="GET", renderer="merchants/reset.jinja2")
    def reset_form(self):
        return {"token": self.request.GET.get("token", ""), "errors": {}}

    @view_config(name="reset-password", request_method="POST", renderer="merchants/reset.jinja2")
    def reset(self):
        values = form_values(self.request, "token", "new_password")
        try:
            body = validate(ResetPassword, values)
            merchant = services.reset_password(
                self.request.dbsession, self.request.app_settings, body.token, body.new_password
            )
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return {"token": values["token"], "errors": exc.errors}
        except PayportalError as exc:
            self.request.response.status_int = exc.status
            return {"token": values["token"], "errors": errors_from_domain(exc)}
        revoke_merchant_sessions(self.request.dbsession, merchant.id)
        return HTTPSeeOther(location=url(self.request, "portal", "login", notice="password_reset"))

    @view_config(name="logout", request_method="POST")
    def logout(self):
        response = HTTPSeeOther(location=url(self.request, "portal", "login", notice="signed_out"))
        sign_out(self.request, response, MERCHANT)
        return response

    def _failed(self, status: int, values: dict, errors: dict) -> dict:
        self.request.response.status_int = status
        return {"values": {"email": values["email"], "next": values["next"]}, "errors": errors}

    def _signup(self, values: dict, errors: dict) -> dict:
        values.pop("password", None)
        return {
            "values": values,
            "errors": errors,
            "merchant_types": [t.value for t in MerchantType],
        }


@view_defaults(route_name="portal", context=MerchantSettings)
class SettingsPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request
        self.merchant = request.dbsession.get(Merchant, context.merchant_id)

    @view_config(
        name="", request_method="GET", permission=Permission.PROFILE_READ,
        renderer="merchants/settings.jinja2",
    )  # fmt: skip
    def show(self, profile=None, profile_errors=None, password_errors=None):
        merchant = self.merchant
        return {
            "section": "settings",
            "merchant": merchant,
            "profile": profile or {f: getattr(merchant, f) or "" for f in PROFILE_FIELDS},
            "profile_errors": profile_errors or {},
            "password_errors": password_errors or {},
        }

    @view_config(
        name="profile", request_method="POST", permission=Permission.PROFILE_WRITE,
        renderer="merchants/settings.jinja2",
    )  # fmt: skip
    def save_profile(self):
        values = form_values(self.request, *PROFILE_FIELDS)
        # an emptied optional field is cleared, as null clears it in the API
        data = {f: values[f] or None for f in PROFILE_FIELDS if f != "name"}
        data["name"] = values["name"]
        try:
            changes = validate(ProfileUpdate, data).model_dump()
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self.show(profile=values, profile_errors=exc.errors)
        services.update_profile(
            self.request.dbsession, self.merchant, changes, actor=self.request.identity.actor
        )
        return HTTPSeeOther(
            location=url(self.request, "portal", "settings", notice="profile_saved")
        )

    @view_config(
        name="password", request_method="POST", permission=Permission.PASSWORD_CHANGE,
        renderer="merchants/settings.jinja2",
    )  # fmt: skip
    def change_password(self):
        values = form_values(self.request, "current_password", "new_password")
        try:
            body = validate(ChangePassword, values)
            services.change_password(
                self.request.dbsession,
                self.request.app_settings,
                self.merchant.id,
                body.current_password,
                body.new_password,
                actor=self.request.identity.actor,
            )
        except FormInvalid as exc:
            return self._password_failed(422, exc.errors)
        except RateLimited as exc:
            return self._password_failed(429, throttled(exc))
        except PayportalError as exc:
            if not isinstance(exc, RecordedFailure):
                raise
            # the wrong guess is counted like a failed sign-in: let that commit
            return self._password_failed(exc.status, errors_from_domain(exc))
        # every browser of this merchant is signed out; this one continues on a new session
        revoke_merchant_sessions(self.request.dbsession, self.merchant.id)
        response = HTTPSeeOther(
            location=url(self.request, "portal", "settings", notice="password_changed")
        )
        sign_in(self.request, response, MERCHANT, self.merchant.id)
        return response

    def _password_failed(self, status: int, errors: dict):
        self.request.response.status_int = status
        return self.show(password_errors=errors)


@view_config(
    route_name="portal", context=Developers, name="", request_method="GET",
    permission=Permission.KEYS_MANAGE,
)  # fmt: skip
def developers(context, request):
    return HTTPSeeOther(location=url(request, "portal", "api-keys"))


@view_defaults(route_name="portal", permission=Permission.KEYS_MANAGE)
class ApiKeyPages:
    def __init__(self, context, request):
        self.context = context
        self.request = request

    @view_config(
        context=ApiKeyCollection, name="", request_method="GET",
        renderer="merchants/api_keys.jinja2",
    )  # fmt: skip
    def list(self, created=None, values=None, errors=None):
        keys, _more, _cursor = credentials.list_api_keys(
            self.request.dbsession, self.context.merchant_id, limit=KEYS_PAGE, cursor=None
        )
        return {
            "section": "developers",
            "tab": "api-keys",
            "keys": keys,
            "created": created,
            "values": values or {},
            "errors": errors or {},
        }

    @view_config(
        context=ApiKeyCollection, name="", request_method="POST",
        renderer="merchants/api_keys.jinja2",
    )  # fmt: skip
    def create(self):
        values = form_values(self.request, "name")
        try:
            body = validate(CreateApiKey, values)
        except FormInvalid as exc:
            self.request.response.status_int = 422
            return self.list(values=values, errors=exc.errors)
        created = credentials.create_api_key(
            self.request.dbsession,
            self.context.merchant_id,
            body.name,
            actor=self.request.identity.actor,
        )
        # rendered, not redirected: the key exists only in this response, never in a URL or log
        self.request.response.status_int = 201
        return self.list(created=created)

    @view_config(context=ApiKeyResource, name="revoke", request_method="POST")
    def revoke(self):
        key = self.context.obj
        credentials.revoke_api_key(
            self.request.dbsession, key.merchant_id, key.id, actor=self.request.identity.actor
        )
        return HTTPSeeOther(location=url(self.request, "portal", "api-keys", notice="key_revoked"))
