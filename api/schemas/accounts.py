"""Request and response bodies for auth, me and users."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool

from api.schemas.common import Input, Moment, Output, Timestamp
from api.schemas.text import Email, Secret, SingleLine
from domain.actors import Role
from domain.models import Locale

Password = Annotated[str, Secret(min_length=1, max_length=1024)]
DisplayName = Annotated[str, SingleLine(min_length=1, max_length=100)]
Token = Annotated[str, SingleLine(min_length=16, max_length=128)]


class RegisterIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "hanako@example.jp",
                    "password": "桜の花が咲く頃に会いましょう",
                    "display_name": "はなこ",
                    "locale": "ja",
                }
            ]
        }
    )

    email: Email
    password: Password
    display_name: DisplayName | None = None
    locale: Locale = Locale.ja


class Accepted(Output):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "accepted", "message": "確認メールを送信しました。"}]}
    )

    status: str = "accepted"
    message: str


class VerifyEmailIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"token": "q4T0i7...メールのリンクに含まれる文字列"}]}
    )

    token: Token
    password: Password | None = Field(None, description="Required when accepting a staff invitation.")


class PasswordResetIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "hanako@example.jp"}]})

    email: Email


class PasswordResetConfirmIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "token": "q4T0i7...メールのリンクに含まれる文字列",
                    "password": "冬の星座を数えながら帰った夜",
                }
            ]
        }
    )

    token: Token
    password: Password


class TokenOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "refresh_token": "9oV8sK...",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None


class RefreshIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "9oV8sK..."}]})

    refresh_token: Token


class MeOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f4c1e-9a53-4c55-8f7e-1c2d3e4f5a6b",
                    "email": "hanako@example.jp",
                    "display_name": "はなこ",
                    "locale": "ja",
                    "role": "consulter",
                    "email_verified": True,
                    "totp_enabled": False,
                    "created_at": "2026-11-29T10:00:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    display_name: str | None
    locale: Locale
    role: Role
    email_verified: bool
    totp_enabled: bool
    created_at: Timestamp | None


class MeUpdate(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"display_name": "山田 花子", "locale": "ja"}]})

    display_name: DisplayName | None = None
    locale: Locale | None = None


class PasswordChangeIn(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "current_password": "桜の花が咲く頃に会いましょう",
                    "new_password": "夏の海で貝殻を拾った日のこと",
                }
            ]
        }
    )

    current_password: Password
    new_password: Password


class EmailChangeIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"email": "hanako.yamada@example.jp"}]})

    email: Email = Field(description="The new sign-in address; the confirmation link is mailed to it.")


class EmailChangeConfirmIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"token": "q4T0i7...メールのリンクに含まれる文字列"}]}
    )

    token: Token


class TotpEnrolmentOut(Output):
    secret: str
    provisioning_uri: str


class StepUpIn(Input):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "桜の花が咲く頃に会いましょう", "totp_code": "123456"}]}
    )

    password: Password
    totp_code: Annotated[str, SingleLine(pattern=r"^[0-9]{6}$")] | None = Field(
        default=None, description="Staff with TOTP enrolled: the current 6-digit code"
    )


class StepUpOut(Output):
    auth_time: Timestamp = Field(description="When this session's person proved who they are")
    valid_until: Timestamp = Field(description="Sensitive actions are accepted until then")
    max_age: int = Field(description="Seconds a proof counts (the `max_age` of RFC 9470)")
    amr: list[str] = Field(description="How (RFC 8176): `pwd`, and `otp` with a TOTP code")


class TotpConfirmIn(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "123456"}]})

    code: Annotated[str, SingleLine(pattern=r"^[0-9]{6}$")]


class UserCreate(Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "soudanin.sato@madoguchi.example.jp",
                    "role": "consultant",
                    "display_name": "佐藤（相談員）",
                }
            ]
        }
    )

    email: Email
    role: Role
    display_name: DisplayName | None = None
    expires_at: Moment | None = Field(
        None, description="Required for council members: their access ends then."
    )


class UserUpdate(Input):
    model_config = ConfigDict(json_schema_extra={"examples": [{"is_active": False}]})

    role: Role | None = None
    is_active: StrictBool | None = None
    display_name: DisplayName | None = None
    expires_at: Moment | None = None


class UserOut(Output):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6e1a0c1c-31a4-4f0e-8d7c-0a2b3c4d5e6f",
                    "email": "soudanin.sato@madoguchi.example.jp",
                    "display_name": "佐藤（相談員）",
                    "role": "consultant",
                    "is_active": True,
                    "email_verified": False,
                    "totp_enabled": False,
                    "expires_at": None,
                    "created_at": "2026-11-29T10:00:00Z",
                    "version": 1,
                }
            ]
        }
    )

    id: uuid.UUID
    email: str
    display_name: str | None
    role: Role
    is_active: bool
    email_verified: bool
    totp_enabled: bool
    expires_at: Timestamp | None
    created_at: Timestamp | None
    version: int
