"""``mt5gate journal``: read the order journal, and acknowledge what blocks an account.

::

    mt5gate journal list --journal FILE [--login N] [--state KIND ...] [--unresolved]
                         [--key K] [--ticket T] [--limit N] [--json]
    mt5gate journal show --journal FILE (--client-id ID | --key K --login N | --ticket T)
                         [--login N] [--json]
    mt5gate journal blocks --journal FILE [--login N] [--json]
    mt5gate journal acknowledge --journal FILE --login N --note TEXT

``--journal`` defaults to the environment variable ``MT5GATE_JOURNAL``. ``list``, ``show`` and
``blocks`` only read (through a read-only connection): a missing (or empty) file is reported,
never created. ``acknowledge`` is an operator's decision that the orders the broker holds and
the journal never issued were checked: it lifts the account's block, so new orders go again.
Exit status: 0 done; 1 when ``list --unresolved`` or ``blocks`` found any, ``show`` found
none or ``acknowledge`` had nothing to lift; 2 on a usage problem or an unreadable journal.
Also runnable as ``python -m mt5gate.orders.cli``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from mt5gate.orders.ids import (
    DEFAULT_NAMESPACE,
    MAX_NAMESPACE,
    MAX_SEQUENCE,
    ClientOrderId,
    parse_comment_tag,
)
from mt5gate.orders.journal import (
    UNRESOLVED_KINDS,
    EventKind,
    JournalError,
    JournalEvent,
    OrderSummary,
    SqliteJournal,
)

__all__ = [
    "ENV_JOURNAL",
    "CliError",
    "build_parser",
    "main",
    "open_journal",
    "parse_client_id",
    "render_show",
    "render_table",
    "summary_json",
]

#: The environment variable naming the journal when ``--journal`` is not given.
ENV_JOURNAL = "MT5GATE_JOURNAL"

PROG = "mt5gate journal"

_EPILOG = f"""\
exit status: 0 done; 1 when 'list --unresolved' or 'blocks' finds any (so scripts can alert on
it), 'show' finds none or 'acknowledge' has nothing to lift; 2 on bad arguments, a missing or
unreadable journal. --journal defaults to ${ENV_JOURNAL}. The journal is never created."""


class CliError(Exception):
    """A problem with the command line or the journal file, reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`CliError` instead of printing usage and exiting; every
    parser (the subcommands' too) ends its help with the exit statuses."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("epilog", _EPILOG)
        options.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**options)

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)")


# -- parsing ---------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _namespace(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= MAX_NAMESPACE:
        raise argparse.ArgumentTypeError(f"must be 0..{MAX_NAMESPACE:#x}, got {text}")
    return value


def _kind(text: str) -> EventKind:
    try:
        return EventKind(text.upper())
    except ValueError:
        kinds = ", ".join(kind.value for kind in EventKind)
        raise argparse.ArgumentTypeError(f"unknown state {text!r} (one of {kinds})") from None


def parse_client_id(text: str, namespace: int = DEFAULT_NAMESPACE) -> int:
    """The client sequence ``text`` names: a sequence number (``17``), a comment tag
    (``mg:h``, also inside a comment) or a 64-bit magic (decimal or ``0x`` hex) of
    ``namespace``."""
    text = text.strip()
    number: int | None = None
    if text.isascii() and text.isdigit():
        number = int(text)
    elif text[:2].lower() == "0x":
        try:
            number = int(text, 16)
        except ValueError:
            number = None
    if number is None:
        sequence = parse_comment_tag(text)
        if sequence is None:
            raise CliError(f"--client-id {text!r} is not a sequence number, tag or magic")
        return sequence
    if 1 <= number <= MAX_SEQUENCE:
        return number
    found = ClientOrderId.from_magic(number, namespace, login=1)
    if found is None:
        raise CliError(
            f"--client-id {text} is not a sequence or a magic of namespace {namespace:#x}"
        )
    return found.sequence


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate journal`` argument parser."""
    common = _Parser(add_help=False)
    common.add_argument("--journal", type=Path, metavar="FILE",
                        help=f"the order journal (default: ${ENV_JOURNAL})")  # fmt: skip
    common.add_argument("--login", type=_positive, metavar="N", help="only this account")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument("--namespace", type=_namespace, default=DEFAULT_NAMESPACE,
                        help=f"namespace of magics (default {DEFAULT_NAMESPACE:#x})")  # fmt: skip

    parser = _Parser(prog=PROG, description="Inspect the order journal; acknowledge a block.")
    actions = parser.add_subparsers(dest="action", required=True,
                                    metavar="{list,show,blocks,acknowledge}")  # fmt: skip

    listing = actions.add_parser("list", parents=[common], help="list orders, one per line",
                                 description="List orders, oldest id first.")  # fmt: skip
    listing.add_argument("--state", type=_kind, nargs="+", action="extend", metavar="KIND",
                         help="only orders whose last event is one of these kinds")  # fmt: skip
    listing.add_argument("--unresolved", action="store_true",
                         help="only orders whose outcome is open (INTENT, SENT, UNKNOWN, "
                              "RESUBMITTED); exit status 1 when there are any")  # fmt: skip
    listing.add_argument("--key", help="only the order of this idempotency key")
    listing.add_argument("--ticket", type=_positive, help="only orders with this order/deal ticket")
    listing.add_argument("--limit", type=_positive, metavar="N", help="at most N orders")

    show = actions.add_parser("show", parents=[common], help="one order and all its events",
                              description="Show an order and every event.")  # fmt: skip
    which = show.add_mutually_exclusive_group(required=True)
    which.add_argument("--client-id", metavar="ID",
                       help="sequence number (17), comment tag (mg:h) or magic")  # fmt: skip
    which.add_argument("--key", help="idempotency key (needs --login)")
    which.add_argument("--ticket", type=_positive, help="order or deal ticket")

    actions.add_parser("blocks", parents=[common], help="accounts whose new orders are stopped",
                       description="Accounts whose new orders are stopped because the broker "
                       "holds orders of ours this journal never issued.")  # fmt: skip
    ack = actions.add_parser("acknowledge", parents=[common], help="lift an account's block",
                             description="Say that the orders found at the broker were "
                             "checked: new orders on the account go again.")  # fmt: skip
    ack.add_argument("--note", required=True, help="who checked what (kept in the journal)")
    return parser


# -- reading ---------------------------------------------------------------------------------


def _journal_path(given: Path | None) -> Path:
    if given is not None:
        return given
    from_env = os.environ.get(ENV_JOURNAL, "")
    if not from_env:
        raise CliError(f"no journal given: pass --journal FILE or set {ENV_JOURNAL}")
    return Path(from_env)


def open_journal(
    path: Path, namespace: int = DEFAULT_NAMESPACE, *, write: bool = False
) -> SqliteJournal:
    """Open an existing journal, read-only unless ``write``; a missing, empty or non-file path
    is a :class:`CliError` (opening those would create or initialise a journal)."""
    if not path.exists():
        raise CliError(f"no order journal at {path}")
    if not path.is_file():
        raise CliError(f"{path} is not a file, so not an order journal")
    if path.stat().st_size == 0:
        raise CliError(f"order journal {path} is empty (never written, or torn)")
    return SqliteJournal(path, namespace=namespace, readonly=not write)


def _select_show(journal: SqliteJournal, args: argparse.Namespace) -> list[OrderSummary]:
    if args.key is not None:
        if args.login is None:
            raise CliError("--key needs --login: idempotency keys are per account")
        return journal.summaries(args.login, key=args.key)
    if args.ticket is not None:
        return journal.summaries(args.login, ticket=args.ticket)
    sequence = parse_client_id(args.client_id, args.namespace)
    logins = [args.login] if args.login is not None else journal.logins()
    found = (journal.summary(login, sequence) for login in logins)
    return [summary for summary in found if summary is not None]


def _select_list(journal: SqliteJournal, args: argparse.Namespace) -> list[OrderSummary]:
    states: set[EventKind] | None = None if args.state is None else set(args.state)
    if args.unresolved:
        states = set(UNRESOLVED_KINDS) if states is None else states & UNRESOLVED_KINDS
    return journal.summaries(
        args.login, states=states, key=args.key, ticket=args.ticket, limit=args.limit
    )


# -- rendering -------------------------------------------------------------------------------


def _utc(ms: int, *, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _text(value: object) -> str:
    """A cell: ``-`` for nothing, text with control characters quoted as JSON."""
    if value is None or value == "":
        return "-"
    text = str(value)
    return text if text.isprintable() else _compact(text)


def _id_json(client_id: ClientOrderId) -> dict[str, Any]:
    return {
        "login": client_id.login,
        "sequence": client_id.sequence,
        "magic": client_id.magic,
        "tag": client_id.comment_tag,
    }


def summary_json(summary: OrderSummary) -> dict[str, Any]:
    """One summary as JSON-ready data (stable keys; the id as login/sequence/magic/tag)."""
    data = {field.name: getattr(summary, field.name) for field in dataclasses.fields(summary)}
    data["client_id"] = _id_json(summary.client_id)
    data["state"] = summary.state.value
    data["unresolved"] = summary.unresolved
    return data


def _event_json(event: JournalEvent) -> dict[str, Any]:
    data = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    data["client_id"] = _id_json(event.client_id)
    data["kind"] = event.kind.value
    return data


_COLUMNS = ("LOGIN", "ID", "TAG", "STATE", "KEY", "RETCODE", "ORDER", "DEAL", "UPDATED (UTC)")
_RIGHT = frozenset({"LOGIN", "ID", "RETCODE", "ORDER", "DEAL"})


def render_table(summaries: Sequence[OrderSummary]) -> str:
    """The ``list`` table: a header and one aligned line per order."""
    if not summaries:
        return "no orders match"
    rows = [_COLUMNS] + [
        (
            str(s.client_id.login),
            str(s.client_id.sequence),
            s.client_id.comment_tag,
            s.state.value,
            _text(s.idempotency_key),
            _text(s.retcode),
            _text(s.order_ticket),
            _text(s.deal_ticket),
            _utc(s.updated_utc_ms),
        )
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = (
        "  ".join(
            cell.rjust(width) if name in _RIGHT else cell.ljust(width)
            for name, cell, width in zip(_COLUMNS, row, widths, strict=True)
        ).rstrip()
        for row in rows
    )
    return "\n".join(lines)


def render_show(summary: OrderSummary, events: Iterable[JournalEvent]) -> str:
    """One order for ``show``: its summary, then each event with its request and result."""
    cid = summary.client_id
    state = summary.state.value + (" (unresolved)" if summary.unresolved else "")
    fields = [
        ("state", state),
        ("key", _text(summary.idempotency_key)),
        ("events", str(summary.events)),
        ("created", _utc(summary.created_utc_ms, millis=True)),
        ("updated", _utc(summary.updated_utc_ms, millis=True)),
        ("retcode", _text(summary.retcode)),
        ("order ticket", _text(summary.order_ticket)),
        ("deal ticket", _text(summary.deal_ticket)),
        ("request", "-" if summary.request is None else _compact(summary.request)),
    ]
    lines = [f"order {cid.comment_tag}  login {cid.login}  id {cid.sequence}  magic {cid.magic}"]
    lines += [f"  {name:<13}{value}" for name, value in fields]
    lines.append("events:")
    for event in events:
        lines.append(
            f"  #{event.seq} {_utc(event.utc_ms, millis=True)}  {event.kind.value}"
            f"  retcode {_text(event.retcode)}  order {_text(event.order_ticket)}"
            f"  deal {_text(event.deal_ticket)}  note {_text(event.note)}"
        )
        if event.request is not None:
            lines.append(f"      request {_compact(event.request)}")
        if event.result is not None:
            lines.append(f"      result  {_compact(event.result)}")
    return "\n".join(lines)


# -- running ---------------------------------------------------------------------------------


def _blocks(journal: SqliteJournal, args: argparse.Namespace) -> int:
    logins = [args.login] if args.login is not None else journal.logins()
    found = [b for b in (journal.account_block(login) for login in logins) if b is not None]
    if args.json:
        print(json.dumps([dataclasses.asdict(b) for b in found], indent=2, sort_keys=True))
    elif not found:
        print("no account is blocked")
    for block in [] if args.json else found:
        tags = ", ".join(ClientOrderId(block.login, s, args.namespace).comment_tag
                         for s in block.sequences)  # fmt: skip
        print(f"account {block.login}: new orders stopped since {_utc(block.since_utc_ms)}: "
              f"{block.reason}\n  orders: {tags}\n  after checking them at the broker: "
              f"{PROG} acknowledge --login {block.login} --note '...'")  # fmt: skip
    return 1 if found else 0


def _acknowledge(path: Path, args: argparse.Namespace) -> int:
    if args.login is None:
        raise CliError("acknowledge needs --login: blocks are per account")
    with open_journal(path, args.namespace, write=True) as journal:
        lifted = journal.acknowledge(args.login, args.note)
    if lifted is None:
        print(f"{PROG}: account {args.login} is not blocked; nothing to acknowledge",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"account {args.login}: block lifted ({len(lifted.sequences)} orders acknowledged); "
          "new orders go again")  # fmt: skip
    return 0


def _run(args: argparse.Namespace) -> int:
    path = _journal_path(args.journal)
    if args.action == "acknowledge":
        return _acknowledge(path, args)
    with open_journal(path, args.namespace) as journal:
        if args.action == "blocks":
            return _blocks(journal, args)
        if args.action == "list":
            found = _select_list(journal, args)
            if args.json:
                print(json.dumps([summary_json(s) for s in found], indent=2, sort_keys=True))
            else:
                print(render_table(found))
            return 1 if args.unresolved and found else 0
        found = _select_show(journal, args)
        if not found:
            print(f"{PROG}: no order matches in {path}", file=sys.stderr)
            return 1
        shown = [(s, journal.history(s.client_id.login, s.client_id)) for s in found]
    if args.json:
        data = [
            {"summary": summary_json(s), "events": [_event_json(e) for e in h]} for s, h in shown
        ]
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print("\n\n".join(render_show(s, h) for s, h in shown))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mt5gate journal``: 0 done, 1 unresolved orders listed or no order
    shown, 2 on a usage problem or an unreadable journal."""
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except (CliError, JournalError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
    except ValueError as error:  # a stored kind or JSON this mt5gate cannot read
        print(f"{PROG}: the journal holds data this mt5gate cannot read: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover - run by the subprocess tests
    sys.exit(main())
