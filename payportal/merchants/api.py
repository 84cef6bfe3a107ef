"""The auth and API-key JSON API: register, sign in, tokens, profile, passwords, API keys."""

from __future__ import annotations

from pyramid.response import Response

from payportal.apiview import AUTH_MERCHANT, AUTH_NONE, AUTH_TOKEN_ONLY, api_view
from payportal.errors import PayportalError, json_error_response
from payportal.merchants import credentials, mail, services
from payportal.merchants.models import Merchant
from payportal.merchants.resources import ApiKeyCollection, ApiKeyResource, AuthResource
from payportal.merchants.schemas import (
    ApiKeyOut,
    ChangePassword,
    CreateApiKey,
    CreatedApiKey,
    ForgotPassword,
    Login,
    MerchantEnvelope,
    MerchantOut,
    MerchantWithTokens,
    ProfileUpdate,
    RefreshRequest,
    RegisterMerchant,
    ResetPassword,
    TokensEnvelope,
    TokensOut,
)
from payportal.pagination import ListQuery, Page
from payportal.security import Permission

AUTH_TAG = "Auth"
KEYS_TAG = "API keys"


def answer_recorded_failure(request, exc: PayportalError):
    """Answer a RecordedFailure as a plain response, so the transaction commits what it
    recorded (the failed attempt that throttling counts, the revoked token family)."""
    return json_error_response(
        request, exc.status, exc.type, exc.code, exc.message, exc.details, exc.headers
    )


def _tokens(pair: credentials.TokenPair) -> TokensOut:
    return TokensOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
    )


def _signed_in(request, merchant: Merchant) -> MerchantWithTokens:
    pair = credentials.issue_token_pair(request.dbsession, request.app_settings, merchant)
    return MerchantWithTokens(merchant=MerchantOut.model_validate(merchant), tokens=_tokens(pair))


def _current_merchant(request) -> Merchant:
    return request.dbsession.get(Merchant, request.identity.merchant_id)


@api_view(
    context=AuthResource,
    name="register",
    method="POST",
    body=RegisterMerchant,
    response=MerchantWithTokens,
    status=201,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    errors=(409,),
    tag=AUTH_TAG,
    summary="Register a merchant account",
    request_example={
        "name": "Ada's Books",
        "email": "ada@example.com",
        "password": "a long and private passphrase",
        "merchant_type": "business",
        "business_name": "Ada's Books Ltd",
        "country": "GB",
    },
)
def register_view(context, request, body: RegisterMerchant):
    """A new account, `pending` until an operator approves it; it can sign in and read at once,
    but cannot move money before approval. A taken email or business_id answers 409."""
    merchant = services.register_merchant(
        request.dbsession, request.app_settings, **body.model_dump()
    )
    return _signed_in(request, merchant)


@api_view(
    context=AuthResource,
    name="login",
    method="POST",
    body=Login,
    response=MerchantWithTokens,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    errors=(401, 429),
    tag=AUTH_TAG,
    summary="Sign in with email and password",
)
def login_view(context, request, body: Login):
    """The same 401 for a wrong email or a wrong password. After 5 failures for one email
    within 15 minutes, every attempt answers 429 with Retry-After until the window passes."""
    try:
        merchant = services.authenticate_merchant(
            request.dbsession, request.app_settings, body.email, body.password
        )
    except services.InvalidCredentials as exc:
        return answer_recorded_failure(request, exc)
    return _signed_in(request, merchant)


@api_view(
    context=AuthResource,
    name="refresh",
    method="POST",
    body=RefreshRequest,
    response=TokensEnvelope,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    errors=(401,),
    tag=AUTH_TAG,
    summary="Trade a refresh token for a new token pair",
)
def refresh_view(context, request, body: RefreshRequest):
    """Each refresh token works once. Presenting a used one again revokes its whole family:
    the newest token of that sign-in stops working too."""
    try:
        pair = credentials.refresh_tokens(
            request.dbsession, request.app_settings, body.refresh_token
        )
    except credentials.RefreshTokenReused as exc:
        return answer_recorded_failure(request, exc)
    return TokensEnvelope(tokens=_tokens(pair))


@api_view(
    context=AuthResource,
    name="logout",
    method="POST",
    body=RefreshRequest,
    status=204,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    errors=(401,),
    tag=AUTH_TAG,
    summary="Sign out: revoke the refresh token's family",
)
def logout_view(context, request, body: RefreshRequest):
    """Every refresh token of this sign-in stops working; access tokens expire on their own."""
    credentials.revoke_family(request.dbsession, request.app_settings, body.refresh_token)


@api_view(
    context=AuthResource,
    name="profile",
    method="GET",
    response=MerchantEnvelope,
    permission=Permission.PROFILE_READ,
    auth=AUTH_MERCHANT,
    tag=AUTH_TAG,
    summary="The signed-in merchant's profile",
)
def profile_view(context, request):
    """The account behind the token or API key: status says whether it may move money yet."""
    return MerchantEnvelope(merchant=MerchantOut.model_validate(_current_merchant(request)))


@api_view(
    context=AuthResource,
    name="profile",
    method="PATCH",
    body=ProfileUpdate,
    response=MerchantEnvelope,
    permission=Permission.PROFILE_WRITE,
    auth=AUTH_TOKEN_ONLY,
    tag=AUTH_TAG,
    summary="Change profile fields",
)
def update_profile_view(context, request, body: ProfileUpdate):
    """Only the fields sent change; null clears an optional one. An API key may not do this."""
    changes = body.model_dump(include=body.model_fields_set)
    merchant = services.update_profile(
        request.dbsession, _current_merchant(request), changes, actor=request.identity.actor
    )
    return MerchantEnvelope(merchant=MerchantOut.model_validate(merchant))


@api_view(
    context=AuthResource,
    name="change-password",
    method="POST",
    body=ChangePassword,
    status=204,
    permission=Permission.PASSWORD_CHANGE,
    auth=AUTH_TOKEN_ONLY,
    # the key store would keep a fast, unsalted hash of a body holding two passwords
    idempotent=False,
    errors=(422, 429),
    tag=AUTH_TAG,
    summary="Change the password",
)
def change_password_view(context, request, body: ChangePassword):
    """Every refresh token is revoked and every access token issued before the change stops
    working, this one included: sign in again with the new password."""
    try:
        services.change_password(
            request.dbsession,
            request.app_settings,
            request.identity.merchant_id,
            body.current_password,
            body.new_password,
            actor=request.identity.actor,
        )
    except services.WrongCurrentPassword as exc:
        return answer_recorded_failure(request, exc)


@api_view(
    context=AuthResource,
    name="forgot-password",
    method="POST",
    body=ForgotPassword,
    status=202,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    tag=AUTH_TAG,
    summary="Mail a password reset link",
)
def forgot_password_view(context, request, body: ForgotPassword):
    """Always 202, whether or not the email has an account. An account gets a single-use link
    valid 30 minutes."""
    settings = request.app_settings
    message = services.request_password_reset(request.dbsession, settings, body.email)
    if message is not None:
        mail.deliver_after_commit(request.tm.get(), settings, message)
    return Response(status=202)


@api_view(
    context=AuthResource,
    name="reset-password",
    method="POST",
    body=ResetPassword,
    status=204,
    permission=Permission.PUBLIC,
    auth=AUTH_NONE,
    tag=AUTH_TAG,
    summary="Set a new password with a reset link's token",
)
def reset_password_view(context, request, body: ResetPassword):
    """The token works once. Every refresh token, access token and dashboard session of the
    account stops working."""
    services.reset_password(request.dbsession, request.app_settings, body.token, body.new_password)


@api_view(
    context=ApiKeyCollection,
    method="POST",
    body=CreateApiKey,
    response=CreatedApiKey,
    status=201,
    permission=Permission.KEYS_MANAGE,
    auth=AUTH_TOKEN_ONLY,
    # a stored response would keep the secret key in clear for a day: a retry makes a new key
    idempotent=False,
    tag=KEYS_TAG,
    summary="Create an API key",
)
def create_api_key_view(context, request, body: CreateApiKey):
    """The key (sk_...) is in this response only: payportal keeps just its SHA-256 digest."""
    created = credentials.create_api_key(
        request.dbsession, context.merchant_id, body.name, actor=request.identity.actor
    )
    row = created.row
    return CreatedApiKey(
        id=row.id, name=row.name, prefix=row.prefix, key=created.key, created_at=row.created_at
    )


@api_view(
    context=ApiKeyCollection,
    method="GET",
    query=ListQuery,
    response=Page[ApiKeyOut],
    permission=Permission.KEYS_MANAGE,
    auth=AUTH_TOKEN_ONLY,
    tag=KEYS_TAG,
    summary="List API keys",
)
def list_api_keys_view(context, request, query: ListQuery):
    """Working keys, newest first, with their prefix and last use; never the key itself."""
    rows, has_more, next_cursor = credentials.list_api_keys(
        request.dbsession, context.merchant_id, limit=query.limit, cursor=query.cursor
    )
    return Page[ApiKeyOut](
        data=[ApiKeyOut.model_validate(row) for row in rows],
        has_more=has_more,
        next_cursor=next_cursor,
    )


@api_view(
    context=ApiKeyResource,
    method="DELETE",
    status=204,
    permission=Permission.KEYS_MANAGE,
    auth=AUTH_TOKEN_ONLY,
    tag=KEYS_TAG,
    summary="Revoke an API key",
)
def revoke_api_key_view(context, request):
    """Effective at once: the very next request with this key answers 401."""
    credentials.revoke_api_key(
        request.dbsession, context.obj.merchant_id, context.obj.id, actor=request.identity.actor
    )
