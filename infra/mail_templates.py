"""Mail texts. They never carry consultation content: a mail may be read over the victim's shoulder."""

from __future__ import annotations

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "mail.verify_email": {
        "ja": (
            "【窓口】メールアドレスの確認",
            "相談マイページへのご登録ありがとうございます。\n"
            "次のリンクを開いて、登録を完了してください（48時間有効）。\n\n{link}\n\n"
            "お心当たりがない場合は、このメールを破棄してください。\n",
        ),
        "en": (
            "[madoguchi] Confirm your e-mail address",
            "Thank you for registering. Open this link within 48 hours to finish:\n\n{link}\n\n"
            "If you did not register, please ignore this mail.\n",
        ),
    },
    "mail.invite": {
        "ja": (
            "【窓口】スタッフアカウントのご案内",
            "スタッフアカウントが作成されました。次のリンクからパスワードを設定してください（72時間有効）。\n\n"
            "{link}\n",
        ),
        "en": (
            "[madoguchi] Your staff account",
            "A staff account was created for you. Set your password within 72 hours:\n\n{link}\n",
        ),
    },
    "mail.account_exists": {
        "ja": (
            "【窓口】登録のお申し込みについて",
            "このメールアドレスで新規登録のお申し込みがありましたが、すでに登録済みです。\n"
            "ログイン画面からご利用ください。お心当たりがない場合は、このメールを破棄してください。\n\n{login}\n",
        ),
        "en": (
            "[madoguchi] About your registration",
            "Someone asked to register this address, but it already has an account. Please sign in instead. "
            "If this was not you, ignore this mail.\n\n{login}\n",
        ),
    },
}

TEMPLATES["mail.answer_published"] = {
    "ja": (
        "【窓口】ご相談への回答が届きました",
        "ご相談に回答がありました。内容は相談マイページでご確認ください。\n\n{link}\n",
    ),
    "en": (
        "[madoguchi] An answer has arrived",
        "There is an answer to your consultation. Please read it on your my-page.\n\n{link}\n",
    ),
}

TEMPLATES["mail.password_reset"] = {
    "ja": (
        "【窓口】パスワードの再設定",
        "パスワード再設定のお申し込みを受け付けました。次のリンクから1時間以内に新しいパスワードを設定してください。\n\n"
        "{link}\n\nお心当たりがない場合は、このメールを破棄してください。パスワードは変わりません。\n",
    ),
    "en": (
        "[madoguchi] Reset your password",
        "Open this link within one hour to choose a new password:\n\n{link}\n\n"
        "If you did not ask for this, ignore this mail; your password stays as it is.\n",
    ),
}

TEMPLATES["mail.urgent_followup"] = {
    "ja": (
        "【窓口】緊急:相談者から危険を示す追加のメッセージ",
        "担当(または未割り当て)の相談に、相談者から危険を示すメッセージが届き、緊急度が上がりました。\n"
        "すぐに確認してください。\n\n{link}\n",
    ),
    "en": (
        "[madoguchi] Urgent: a follow-up message shows danger",
        "A consulter's new message on a case you handle (or an unassigned case) shows danger; it is now "
        "urgent. Please look at it at once.\n\n{link}\n",
    ),
}

TEMPLATES["mail.clock_reminder"] = {
    "ja": (
        "【窓口】期限が近づいています",
        "ご相談に関係する期限が近づいています。期限と、次にできることを相談マイページでご確認ください。\n\n{link}\n",
    ),
    "en": (
        "[madoguchi] A date is coming up",
        "A date that matters for your consultation is near. Please see it, and what you can do next, on your "
        "my-page.\n\n{link}\n",
    ),
}

TEMPLATES["mail.clock_overdue"] = {
    "ja": (
        "【窓口】期限を過ぎたものがあります",
        "ご相談に関係する期限が過ぎました。次の相談先や手段を相談マイページでご案内しています。\n\n{link}\n",
    ),
    "en": (
        "[madoguchi] A date has passed",
        "A date that matters for your consultation has passed. Your my-page suggests where to turn next."
        "\n\n{link}\n",
    ),
}
TEMPLATES["mail.export_ready"] = {
    "ja": (
        "【窓口】ご依頼のデータの準備ができました",
        "ご依頼いただいたデータの書き出しの準備ができました。ログインしてダウンロードしてください"
        "（一度だけ。期限を過ぎると削除されます）。お心当たりがない場合は、窓口にご連絡ください。\n\n{login}\n",
    ),
    "en": (
        "[madoguchi] Your data export is ready",
        "The export of your data that you asked for is ready. Please sign in to download it "
        "(once; after a few days it is deleted). If you did not ask for it, please contact us.\n\n{login}\n",
    ),
}

LINK_PATHS = {
    "mail.clock_reminder": "/consultations/{consultation_id}",
    "mail.clock_overdue": "/consultations/{consultation_id}",
    "mail.urgent_followup": "/staff/consultations/{consultation_id}",
    "mail.password_reset": "/reset-password#token={token}",
    "mail.answer_published": "/consultations/{consultation_id}",
    "mail.verify_email": "/verify-email#token={token}",
    "mail.invite": "/accept-invite#token={token}",
}


def render(kind: str, locale: str, public_url: str, payload: dict[str, str]) -> tuple[str, str]:
    subject, body = TEMPLATES[kind].get(locale) or TEMPLATES[kind]["ja"]
    base = public_url.rstrip("/")
    link = base + LINK_PATHS[kind].format(**payload) if kind in LINK_PATHS else ""
    return subject, body.format(link=link, login=base + "/login", due_date=payload.get("due_date", ""))


# Issue 17 §3: the erasure request's confirmation (with the date and how to cancel) and its completion.
TEMPLATES["mail.erasure_requested"] = {
    "ja": (
        "【窓口】アカウント削除のお申し込みを受け付けました",
        "アカウント削除のお申し込みを受け付けました。{due_date} 以降に、ご相談の内容とアカウントを削除します。\n"
        "それまでは、相談マイページの「アカウント削除」から取り消すことができます。\n\n{link}\n\n"
        "お心当たりがない場合は、すぐにログインして取り消し、パスワードを変更してください。\n",
    ),
    "en": (
        "[madoguchi] Your request to delete your account",
        "We received your request to delete your account. From {due_date} your consultations and account will be "
        "deleted. Until then you can cancel it on your my-page (Delete account).\n\n{link}\n\n"
        "If this was not you, sign in now, cancel the request and change your password.\n",
    ),
}
TEMPLATES["mail.erasure_completed"] = {
    "ja": (
        "【窓口】アカウントを削除しました",
        "お申し込みのとおり、アカウントとご相談の内容を削除しました。\n"
        "法律上の理由で保全中の記録がある場合は、保全が解除されるまで保管し、その後削除します。\n",
    ),
    "en": (
        "[madoguchi] Your account was deleted",
        "As you asked, your account and your consultations were deleted. Any record under a legal hold is kept "
        "until the hold is lifted, then deleted.\n",
    ),
}
LINK_PATHS["mail.erasure_requested"] = "/me/erasure"

# Issue 17 §3: changing the sign-in address. The link goes to the new address and carries only the token; the
# notice goes to the old address and does not name the new one; the owner of an address already in use is told
# someone tried it, and nothing else.
TEMPLATES["mail.change_email"] = {
    "ja": (
        "【窓口】メールアドレス変更の確認",
        "ログイン用メールアドレスをこのアドレスに変更するお申し込みを受け付けました。\n"
        "次のリンクを1時間以内に開くと変更が完了します。\n\n{link}\n\n"
        "お心当たりがない場合は、このメールを破棄してください。何も変わりません。\n",
    ),
    "en": (
        "[madoguchi] Confirm your new e-mail address",
        "Someone asked to make this the sign-in address of their account. Open this link within one hour to "
        "finish the change:\n\n{link}\n\nIf this was not you, ignore this mail; nothing changes.\n",
    ),
}
TEMPLATES["mail.email_changed"] = {
    "ja": (
        "【窓口】ログイン用メールアドレスが変更されました",
        "お使いのアカウントのログイン用メールアドレスが変更されました。今後のご案内は新しいアドレスに届きます。\n"
        "お心当たりがない場合は、すぐに窓口にご連絡ください。\n",
    ),
    "en": (
        "[madoguchi] Your sign-in address was changed",
        "The sign-in address of your account was changed; mail will now go to the new address. If this was "
        "not you, please contact the centre at once.\n",
    ),
}
TEMPLATES["mail.email_change_taken"] = {
    "ja": (
        "【窓口】メールアドレスの変更のお申し込みについて",
        "このメールアドレスを別のアカウントのログイン用アドレスにするお申し込みがありましたが、"
        "すでにあなたのアカウントで使われているため、変更はしていません。\n"
        "あなたのアカウントは変わりません。お心当たりがない場合は、このメールを破棄してください。\n\n{login}\n",
    ),
    "en": (
        "[madoguchi] About a request to use your address",
        "Someone asked to use this address for another account. It is already your account's address, so "
        "nothing was changed and your account is as it was. If this was not you, ignore this mail.\n\n{login}\n",
    ),
}
LINK_PATHS["mail.change_email"] = "/confirm-email-change#token={token}"
# The cancellation: the fact only (a request someone else made in the person's name shows here too), no link.
TEMPLATES["mail.erasure_cancelled"] = {
    "ja": (
        "【窓口】アカウント削除のお申し込みを取り消しました",
        "アカウント削除のお申し込みは取り消されました。アカウントとご相談の内容はそのまま残ります。\n\n"
        "お心当たりがない場合は、ログインしてパスワードを変更してください。\n",
    ),
    "en": (
        "[madoguchi] Your request to delete your account was cancelled",
        "The request to delete your account was cancelled. Your account and consultations stay as they were.\n\n"
        "If this was not you, sign in and change your password.\n",
    ),
}
