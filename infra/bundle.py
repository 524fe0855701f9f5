"""Writing the evidence bundle: a ZIP with manifest.json, the cleaned files, the originals asked for, the
chain of custody with its head and time-stamp token, and a PDF report in Japanese (fpdf2, IPAexGothic
embedded). Written to a spooled temporary file (memory up to 8 MiB, then disk) and streamed from there."""

from __future__ import annotations

import base64
import json
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from fpdf import FPDF
from fpdf.enums import WrapMode
from fpdf.fonts import FontFace

from domain.bundle import BundleItem, EvidenceBundle
from domain.custody import canonical, head_statement, utc_text
from infra.fonts import FONT_FAMILY, japanese_font_path
from infra.storage import EXTENSIONS

JST = timezone(timedelta(hours=9), "JST")
FORMAT = "madoguchi-evidence-bundle/1"
SPOOL_BYTES = 8 * 1_048_576
CHUNK = 64 * 1024
ROLE_JA = {
    "consulter": "相談者",
    "consultant": "担当相談員",
    "supervisor": "担当相談員（スーパーバイザー）",
}


def jst(at: datetime | None) -> str | None:
    return at.astimezone(JST).isoformat(timespec="seconds") if at else None


def jst_label(at: datetime | None) -> str:
    return at.astimezone(JST).strftime("%Y年%m月%d日 %H:%M:%S（日本時間）") if at else "記録なし"


def _copy_path(item: BundleItem) -> str | None:
    e: Any = item.evidence
    if item.copy is None or e.file is None:
        return None
    return f"files/{item.number:02d}-{e.id}.{EXTENSIONS.get(e.file.content_type, 'bin')}"


def _original_path(item: BundleItem) -> str | None:
    e: Any = item.evidence
    if item.original is None:
        return None
    return f"originals/{item.number:02d}-{e.id}.{EXTENSIONS.get(item.original.content_type, 'bin')}"


def _stamp_paths(bundle: EvidenceBundle) -> tuple[str, str] | None:
    if bundle.stamp is None:
        return None
    return f"custody/stamp-{bundle.stamp.seq}.json", f"custody/stamp-{bundle.stamp.seq}.tsr"


def manifest(bundle: EvidenceBundle) -> dict[str, Any]:
    items = []
    for item in bundle.items:
        e: Any = item.evidence
        items.append(
            {
                "number": item.number,
                "evidence_id": str(e.id),
                "url": e.url,
                "platform": e.platform,
                "posted_at_jst": jst(e.posted_at),
                "poster_account": e.poster_account,
                "captured_at_jst": jst(e.captured_at),
                "recorded_at_jst": jst(e.created_at),
                "excerpt": e.excerpt,
                "copy": None
                if e.file is None
                else {
                    "path": _copy_path(item),
                    "content_type": e.file.content_type,
                    "size": e.file.size,
                    "sha256": item.copy_sha256,
                },
                "original": None
                if e.file is None
                else {
                    "sha256": item.original_sha256,
                    "included": item.original is not None,
                    "path": _original_path(item),
                    "kept": item.original_sha256 is not None,
                },
            }
        )
    stamp = bundle.stamp
    paths = _stamp_paths(bundle)
    return {
        "format": FORMAT,
        "consultation_id": str(bundle.consultation_id),
        "exported_at_jst": jst(bundle.exported_at),
        "exported_at": utc_text(bundle.exported_at),
        "exported_by": {"role": bundle.exported_by_role, "actor_id": str(bundle.exported_by)},
        "originals_requested": bundle.originals_requested,
        "hash_algorithm": "SHA-256",
        "items": items,
        "custody": {
            "chain": "custody/chain.jsonl",
            "links": len(bundle.links),
            "head": {"seq": bundle.head.seq, "hash": bundle.head.hash},
            "head_statement": "custody/head.json",
            "timestamp": None
            if stamp is None or paths is None
            else {
                "seq": stamp.seq,
                "hash": stamp.hash,
                "stamped_at": utc_text(stamp.stamped_at),
                "stamped_at_jst": jst(stamp.stamped_at),
                "tsa_url": stamp.tsa_url,
                "statement": paths[0],
                "token": paths[1],
                "token_base64": base64.b64encode(stamp.token).decode(),
            },
        },
    }


def chain_lines(bundle: EvidenceBundle) -> bytes:
    """One JSON object per line: the link in its canonical form (re-serialise `link` with sorted keys, no
    spaces, UTF-8 to get the exact bytes hashed), the previous hash and the link's hash."""
    lines = []
    for link in bundle.links:
        lines.append(
            json.dumps(
                {"link": json.loads(canonical(link)), "prev_hash": link.prev_hash, "hash": link.hash},
                ensure_ascii=False,
                sort_keys=True,
            )
        )
    return ("\n".join(lines) + "\n").encode()


def write_zip(bundle: EvidenceBundle, out: IO[bytes]) -> None:
    data = manifest(bundle)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        z.writestr("report.pdf", report_pdf(bundle, data))
        for item in bundle.items:
            path = _copy_path(item)
            if path and item.copy is not None:
                z.writestr(path, item.copy, compress_type=zipfile.ZIP_STORED)
            opath = _original_path(item)
            if opath and item.original is not None:
                z.writestr(opath, item.original.data, compress_type=zipfile.ZIP_STORED)
        z.writestr("custody/chain.jsonl", chain_lines(bundle))
        z.writestr(
            "custody/head.json", head_statement(bundle.consultation_id, bundle.head.seq, bundle.head.hash)
        )
        paths = _stamp_paths(bundle)
        if bundle.stamp is not None and paths is not None:
            z.writestr(paths[0], head_statement(bundle.consultation_id, bundle.stamp.seq, bundle.stamp.hash))
            z.writestr(paths[1], bundle.stamp.token)


def spool(bundle: EvidenceBundle) -> IO[bytes]:
    """The ZIP in a spooled temporary file, rewound. The caller closes it (closing deletes it)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by the stream
    write_zip(bundle, out)
    out.seek(0)
    return out


def chunks(spooled: IO[bytes]) -> Iterator[bytes]:
    try:
        while block := spooled.read(CHUNK):
            yield block
    finally:
        spooled.close()


# -- the PDF report ----------------------------------------------------------------------------------------


class _Report(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT_FAMILY, size=8)
        self.cell(0, 6, f"{self.page_no()} / {{nb}}", align="C")


def report_pdf(bundle: EvidenceBundle, data: dict[str, Any]) -> bytes:
    pdf = _Report(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(FONT_FAMILY, fname=str(japanese_font_path()))
    pdf.set_title("証拠資料一式 報告書")
    pdf.set_creator("madoguchi")
    pdf.add_page()
    pdf.set_font(FONT_FAMILY, size=16)
    pdf.cell(0, 10, "証拠資料一式（エビデンス・バンドル）報告書", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=10)
    role = ROLE_JA.get(bundle.exported_by_role, bundle.exported_by_role)
    for line in (
        f"相談ID：{bundle.consultation_id}",
        f"作成日時：{jst_label(bundle.exported_at)}",
        f"作成者：{role}（ID {bundle.exported_by}）",
        f"証拠の件数：{len(bundle.items)} 件　原本の同梱：{'希望あり' if bundle.originals_requested else '希望なし'}",
    ):
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font(FONT_FAMILY, size=8)
    heading = FontFace(emphasis=None, fill_color=(225, 232, 240))
    with pdf.table(
        col_widths=(8, 62, 30, 30, 28, 50, 69),
        text_align="LEFT",
        wrapmode=WrapMode.CHAR,
        headings_style=heading,
        line_height=4.2,
    ) as table:
        row = table.row()
        for title in (
            "No.",
            "URL",
            "投稿日時",
            "取得日時",
            "投稿者アカウント",
            "ファイル（ZIP内）",
            "SHA-256（上：複製　下：原本）",
        ):
            row.cell(title)
        for entry in data["items"]:
            copy = entry["copy"] or {}
            original = entry["original"] or {}
            if not copy:
                hashes = "ファイルなし"
            else:
                kept = original.get("sha256") or "原本のハッシュは記録されていません"
                hashes = f"{copy.get('sha256')}\n{kept}"
            files = copy.get("path") or ("（封印：ハッシュのみ）" if copy else "—")
            if original.get("path"):
                files += f"\n{original['path']}"
            row = table.row()
            row.cell(str(entry["number"]))
            row.cell(entry["url"] or "（URLの記録なし）")
            row.cell(_jst_short(entry["posted_at_jst"]))
            row.cell(_jst_short(entry["captured_at_jst"]))
            row.cell(entry["poster_account"] or "（記録なし）")
            row.cell(files)
            row.cell(hashes)
    pdf.ln(4)
    pdf.set_font(FONT_FAMILY, size=10)
    custody = data["custody"]
    stamp = custody["timestamp"]
    _section(pdf, "記録の連鎖（改ざんの検知）")
    _para(
        pdf,
        "この相談の証拠と記録に対する操作（作成、ファイルの受領、閲覧、ダウンロード、書き出し、訂正、削除など）は、"
        "操作のたびに一つずつ、前の記録のハッシュ値とつないで記録しています。途中の記録を書き換えたり、"
        "消したり、順番を入れ替えたりすると、つながりが合わなくなります。",
    )
    _para(
        pdf,
        f"記録の件数：{custody['links']} 件（この書き出し自体も最後の 1 件として記録されています）\n"
        f"最新の記録のハッシュ値（SHA-256）：{custody['head']['hash']}",
    )
    if stamp:
        _para(
            pdf,
            f"時刻認証（RFC 3161 タイムスタンプ）：{stamp['seq']} 件目までの記録が "
            f"{_jst_short(stamp['stamped_at_jst'])} に存在したことを、時刻認証局（{stamp['tsa_url']}）が証明しています。"
            f"トークンは {stamp['token']}、対象のデータは {stamp['statement']} です。",
        )
    else:
        _para(pdf, "時刻認証（タイムスタンプ）：この時点ではまだ付与されていません。")
    _section(pdf, "ハッシュ値の確かめ方")
    _para(
        pdf,
        "ハッシュ値（SHA-256）は、ファイルの中身から計算される 64 文字の「指紋」です。1 バイトでも変われば、"
        "まったく違う値になります。ZIP ファイルを展開し、次のコマンドで各ファイルのハッシュ値を計算して、"
        "上の表（および manifest.json）の値と一致するかを確かめてください。一致すれば、ファイルはこの報告書を"
        "作成した時点から変わっていません。",
    )
    example = next(
        (i["copy"]["path"] for i in data["items"] if i["copy"] and i["copy"]["path"]), "files/01-….png"
    )
    _para(pdf, f"Windows（コマンドプロンプト）：certutil -hashfile {example.replace('/', chr(92))} SHA256")
    _para(pdf, f"macOS・Linux（ターミナル）：shasum -a 256 {example}")
    _para(
        pdf,
        "「複製」は、位置情報などのメタデータを取り除いて保管しているファイルです。「原本」は受け付けたときのままの"
        "ファイルで、相談者ご本人が希望された場合にだけ originals/ に同梱されます。",
    )
    _para(
        pdf,
        "記録の連鎖は custody/chain.jsonl に 1 行 1 件で入っています。各行の link をキーの順に並べ、空白なしの"
        " JSON（UTF-8）にしたものの前に、一つ前の行の hash（16 進数を 32 バイトに戻したもの。最初の行は 0 が 32"
        " バイト）を付けて SHA-256 を計算すると、その行の hash になります。最後の行の hash は上の「最新の記録の"
        "ハッシュ値」と同じです。タイムスタンプは次のコマンドで確かめられます："
        " openssl ts -verify -in custody/stamp-N.tsr -data custody/stamp-N.json -CAfile 時刻認証局の証明書.pem",
    )
    out = pdf.output()
    return bytes(out)


def _jst_short(value: str | None) -> str:
    if not value:
        return "（記録なし）"
    return jst_label(datetime.fromisoformat(value))


def _section(pdf: FPDF, title: str) -> None:
    pdf.set_font(FONT_FAMILY, size=12)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT_FAMILY, size=10)


def _para(pdf: FPDF, body: str) -> None:
    pdf.multi_cell(0, 5.5, body, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)
