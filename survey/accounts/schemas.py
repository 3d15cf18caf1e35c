"""Schemas of the staff API: one per direction and audience; server-owned fields are dump-only."""

from __future__ import annotations

from marshmallow import fields, validate

from survey.accounts.models import ROLES
from survey.accounts.services import TOKEN_DAYS_DEFAULT, TOKEN_DAYS_MAX
from survey.api import Schema, UTCDateTime
from survey.questionnaires.fields import StrictBoolean


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    active = fields.Boolean(dump_only=True)
    created_at = UTCDateTime(dump_only=True)


class UserCreateSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=256))


class UserUpdateSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES))
    active = StrictBoolean()


class TokenSchema(Schema):
    id = fields.Integer(dump_only=True)
    user_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True, metadata={"description": "The token's first characters, to recognise it"})
    created_at = UTCDateTime(dump_only=True)
    expires_at = UTCDateTime(dump_only=True)
    revoked_at = UTCDateTime(dump_only=True, allow_none=True)
    last_used_on = fields.Date(dump_only=True, allow_none=True)


class TokenCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    days = fields.Integer(strict=True, load_default=TOKEN_DAYS_DEFAULT, validate=validate.Range(1, TOKEN_DAYS_MAX))
    user_id = fields.Integer(
        strict=True,
        validate=validate.Range(1, 2**31 - 1),
        metadata={"description": "Admins may make a token for another user"},
    )


class NewTokenSchema(TokenSchema):
    token = fields.String(dump_only=True, metadata={"description": "The secret: shown this once, never again"})


class AuditEventSchema(Schema):
    id = fields.Integer()
    at = UTCDateTime()
    actor = fields.String()
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    details = fields.Dict()


class AuditQuerySchema(Schema):
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))
    action = fields.String(validate=validate.Length(max=64))
