"""IAM's account password policy: its rules, their limits, and AWS's shapes for both.

A :class:`PasswordPolicy` is what UpdateAccountPasswordPolicy sets (every parameter left
out takes AWS's default: AWS replaces the whole policy) and what GetAccountPasswordPolicy
answers. Without one, kennel keeps its own rule (8 to 128 characters of anything) rather
than AWS's three-of-four-character-types default, so long lowercase passphrases work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kennel.iam._errors import IamValidationError

MIN_PASSWORD_LENGTH = 8
"""kennel's own rule when no password policy is set: 8 to 128 characters of any kind."""
MAX_PASSWORD_LENGTH = 128
DEFAULT_MINIMUM_LENGTH = 6
"""AWS's MinimumPasswordLength when a policy leaves it out (and its lowest)."""
MAX_PASSWORD_AGE_DAYS = 1095
MAX_REUSE_PREVENTION = 24
SYMBOLS_TEXT = "! @ # $ % ^ & * ( ) _ + - = [ ] { } | '"
SYMBOLS = frozenset(SYMBOLS_TEXT.replace(" ", ""))
"""The characters AWS counts as symbols (RequireSymbols)."""

_LIMITS: dict[str, tuple[str, int, int]] = {
    "minimum_password_length": ("minimumPasswordLength", DEFAULT_MINIMUM_LENGTH, 128),
    "max_password_age": ("maxPasswordAge", 1, MAX_PASSWORD_AGE_DAYS),
    "password_reuse_prevention": ("passwordReusePrevention", 1, MAX_REUSE_PREVENTION),
}
"""Field -> (AWS's member name in its messages, lowest, highest) for what may be given."""

DEFAULT_RULES = f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
"""What a new password needs when no policy is set."""


@dataclass(frozen=True)
class PasswordPolicy:
    """The account's password policy; 0 for max_password_age or password_reuse_prevention
    means that rule is off (AWS leaves the field out of its answer then)."""

    minimum_password_length: int = DEFAULT_MINIMUM_LENGTH
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase_characters: bool = False
    require_lowercase_characters: bool = False
    allow_users_to_change_password: bool = False
    max_password_age: int = 0
    password_reuse_prevention: int = 0
    hard_expiry: bool = False

    @classmethod
    def given(
        cls,
        *,
        minimum_password_length: int | None = None,
        require_symbols: bool = False,
        require_numbers: bool = False,
        require_uppercase_characters: bool = False,
        require_lowercase_characters: bool = False,
        allow_users_to_change_password: bool = False,
        max_password_age: int | None = None,
        password_reuse_prevention: int | None = None,
        hard_expiry: bool = False,
    ) -> PasswordPolicy:
        """The policy UpdateAccountPasswordPolicy makes of its parameters (None = left
        out), after AWS's range checks: every value out of range is named in one
        ValidationError, as AWS's "N validation errors detected" does."""
        numbers = {
            "minimum_password_length": minimum_password_length,
            "max_password_age": max_password_age,
            "password_reuse_prevention": password_reuse_prevention,
        }
        problems = []
        for field, value in numbers.items():
            member, lowest, highest = _LIMITS[field]
            if value is None:
                continue
            if value < lowest:
                problems.append(
                    f"Value '{value}' at '{member}' failed to satisfy constraint: Member must "
                    f"have value greater than or equal to {lowest}"
                )
            elif value > highest:
                problems.append(
                    f"Value '{value}' at '{member}' failed to satisfy constraint: Member must "
                    f"have value less than or equal to {highest}"
                )
        if problems:
            count = len(problems)
            raise IamValidationError(
                f"{count} validation error{'s' if count > 1 else ''} detected: "
                + "; ".join(problems)
            )
        return cls(
            minimum_password_length=minimum_password_length or DEFAULT_MINIMUM_LENGTH,
            require_symbols=require_symbols,
            require_numbers=require_numbers,
            require_uppercase_characters=require_uppercase_characters,
            require_lowercase_characters=require_lowercase_characters,
            allow_users_to_change_password=allow_users_to_change_password,
            max_password_age=max_password_age or 0,
            password_reuse_prevention=password_reuse_prevention or 0,
            hard_expiry=hard_expiry,
        )

    def violations(self, password: str) -> list[str]:
        """What is wrong with ``password`` under this policy, one sentence a rule."""
        found = []
        if len(password) < self.minimum_password_length:
            found.append(f"Password should have a minimum length of {self.minimum_password_length}")
        if len(password) > MAX_PASSWORD_LENGTH:
            found.append(f"Password should have a maximum length of {MAX_PASSWORD_LENGTH}")
        if self.require_uppercase_characters and not any("A" <= c <= "Z" for c in password):
            found.append("Password should have at least one uppercase letter")
        if self.require_lowercase_characters and not any("a" <= c <= "z" for c in password):
            found.append("Password should have at least one lowercase letter")
        if self.require_numbers and not any("0" <= c <= "9" for c in password):
            found.append("Password should have at least one number")
        if self.require_symbols and not any(c in SYMBOLS for c in password):
            found.append(f"Password should have at least one symbol ({SYMBOLS_TEXT})")
        return found

    def rules(self) -> str:
        """What a new password needs under this policy, as a sentence's end."""
        needs = [f"{self.minimum_password_length} to {MAX_PASSWORD_LENGTH} characters"]
        for wanted, what in (
            (self.require_uppercase_characters, "an uppercase letter"),
            (self.require_lowercase_characters, "a lowercase letter"),
            (self.require_numbers, "a number"),
            (self.require_symbols, f"a symbol ({SYMBOLS_TEXT})"),
        ):
            if wanted:
                needs.append(what)
        text = ", ".join(needs)
        if self.password_reuse_prevention:
            text += f", and none of your last {self.password_reuse_prevention}"
        return text

    def expired(self, changed_at: datetime, now: datetime) -> bool:
        """Whether a password set at ``changed_at`` is older than MaxPasswordAge."""
        return self.max_password_age > 0 and now - changed_at >= timedelta(
            days=self.max_password_age
        )

    def shape(self) -> dict[str, Any]:
        """GetAccountPasswordPolicy's PasswordPolicy: the optional numbers and HardExpiry
        only when set, as AWS answers."""
        shape: dict[str, Any] = {
            "MinimumPasswordLength": self.minimum_password_length,
            "RequireSymbols": self.require_symbols,
            "RequireNumbers": self.require_numbers,
            "RequireUppercaseCharacters": self.require_uppercase_characters,
            "RequireLowercaseCharacters": self.require_lowercase_characters,
            "AllowUsersToChangePassword": self.allow_users_to_change_password,
            "ExpirePasswords": self.max_password_age > 0,
        }
        if self.max_password_age:
            shape["MaxPasswordAge"] = self.max_password_age
        if self.password_reuse_prevention:
            shape["PasswordReusePrevention"] = self.password_reuse_prevention
        if self.hard_expiry:
            shape["HardExpiry"] = True
        return shape
