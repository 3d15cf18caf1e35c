"""Staff JSON API for accounts (``/api/v1/admin``): who am I, users (admins), tokens, the audit log."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import select

from survey.accounts import services
from survey.accounts.auth import require, staff
from survey.accounts.models import ApiToken, AuditEvent, User
from survey.accounts.schemas import (
    AuditEventSchema,
    AuditQuerySchema,
    NewTokenSchema,
    TokenCreateSchema,
    TokenSchema,
    UserCreateSchema,
    UserSchema,
    UserUpdateSchema,
)
from survey.api import SurveyBlueprint
from survey.db import db
from survey.errors import NotFoundError, PermissionDeniedError

blp = SurveyBlueprint("admin_accounts", __name__, url_prefix="/api/v1/admin")


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"There is no user {user_id}.")
    return user


@blp.route("/me")
@require("questionnaires.read")
@blp.response(200, UserSchema)
def me() -> User:
    """The staff member the token belongs to."""
    return staff()  # type: ignore[return-value]


@blp.route("/users")
class Users(MethodView):
    @require("users.manage")
    @blp.response(200, UserSchema(many=True))
    def get(self) -> list[User]:
        """List staff users (admins only)."""
        return list(db.session.scalars(select(User).order_by(User.email)))

    @require("users.manage")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The e-mail address is taken")
    def post(self, body: dict[str, Any]) -> User:
        """Create a staff user (admins only)."""
        return services.create_user(body["email"], body["name"], body["role"], body["password"], actor=staff())


@blp.route("/users/<int(max=2147483647):user_id>")
class UserDetail(MethodView):
    @require("users.manage")
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, body: dict[str, Any], user_id: int) -> User:
        """Change a user's role or deactivate them (their sessions end at once)."""
        user = _user(user_id)
        actor = staff()
        demoting = user.role == "admin" and (body.get("role", "admin") != "admin" or body.get("active") is False)
        if demoting and services.count_admins() <= 1:
            raise PermissionDeniedError("The last active admin cannot be demoted or deactivated.")
        return services.update_user(user, actor, role=body.get("role"), active=body.get("active"))  # type: ignore[arg-type]


@blp.route("/tokens")
class Tokens(MethodView):
    @require("questionnaires.read")
    @blp.response(200, TokenSchema(many=True))
    def get(self) -> list[ApiToken]:
        """Your tokens; an admin sees everyone's."""
        actor = staff()
        query = select(ApiToken).order_by(ApiToken.id)
        if not actor.can("users.manage"):  # type: ignore[union-attr]
            query = query.where(ApiToken.user_id == actor.id)  # type: ignore[union-attr]
        return list(db.session.scalars(query))

    @require("questionnaires.read")
    @blp.arguments(TokenCreateSchema)
    @blp.response(201, NewTokenSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Make a token (shown once). Admins may make one for another user."""
        actor = staff()
        owner = actor
        if "user_id" in body and body["user_id"] != actor.id:  # type: ignore[union-attr]
            if not actor.can("users.manage"):  # type: ignore[union-attr]
                raise PermissionDeniedError("Only admins make tokens for other users.")
            owner = _user(body["user_id"])
        token, secret = services.create_token(owner, body["name"], body["days"], actor=actor)  # type: ignore[arg-type]
        return {name: getattr(token, name) for name in TokenSchema().fields} | {"token": secret}


@blp.route("/tokens/<int(max=2147483647):token_id>", methods=["DELETE"])
@require("questionnaires.read")
@blp.response(204)
def revoke(token_id: int) -> None:
    """Revoke a token: your own, or anyone's as an admin."""
    actor = staff()
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.id and not actor.can("users.manage")):  # type: ignore[union-attr]
        raise NotFoundError(f"There is no token {token_id}.")  # never confirms someone else's token exists
    services.revoke_token(token, actor)  # type: ignore[arg-type]


@blp.route("/audit")
@require("audit.read")
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditEventSchema(many=True))
def audit(query: dict[str, Any]) -> list[AuditEvent]:
    """The audit log of staff actions, newest first (admins only)."""
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(query["limit"]).offset(query["offset"])
    if query.get("action"):
        statement = statement.where(AuditEvent.action == query["action"])
    return list(db.session.scalars(statement))
