"""``mt5gate journal``: read the order journal, and acknowledge what blocks an account.

::

    mt5gate journal list (--journal FILE | --store URL) [--login N] [--state KIND ...]
                         [--unresolved] [--key K] [--ticket T] [--limit N] [--json]
    mt5gate journal show ... (--client-id ID | --key K --login N | --ticket T) [--json]
    mt5gate journal blocks ... [--login N] [--json]
    mt5gate journal acknowledge ... --login N --note TEXT

The journal is a SQLite file (``--journal``, default ``$MT5GATE_JOURNAL``) or a fleet's
PostgreSQL database (``--store postgresql://...``, default ``$MT5GATE_STORE_URL``; ``--schema``
names its schema; needs the ``fleet`` extra; its password is never printed). ``list``,
``show`` and ``blocks`` only read (a SQLite file through a read-only connection): a missing
(or empty) file is reported, never created, and a PostgreSQL schema must exist at this
code's version. ``acknowledge`` is an operator's decision that the orders the broker holds and
the journal never issued were checked: it lifts the account's block, so new orders go again.
Exit status: 0 done; 1 when ``list --unresolved`` or ``blocks`` found any, ``show`` found
none or ``acknowledge`` had nothing to lift; 2 on a usage problem or an unreadable journal.
``mt5gate journal`` is a typer sub-app made from :func:`build_parser` (with the account
options, :mod:`mt5gate.cli.journal`); ``python -m mt5gate.orders.cli`` parses the same table
with argparse, on the core alone (no typer).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

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
from mt5gate.orders.store import AccountBlock

if TYPE_CHECKING:
    from mt5gate.orders.postgres import PostgresStore

__all__ = [
    "ENV_JOURNAL",
    "ENV_STORE",
    "BlockingStore",
    "CliError",
    "Inspectable",
    "build_parser",
    "main",
    "open_journal",
    "open_store",
    "parse_client_id",
    "render_show",
    "render_table",
    "run",
    "summary_json",
]

T = TypeVar("T")

#: The environment variable naming the journal when ``--journal`` is not given.
ENV_JOURNAL = "MT5GATE_JOURNAL"

#: The environment variable naming a PostgreSQL journal (a DSN) when ``--store`` is not given.
ENV_STORE = "MT5GATE_STORE_URL"

PROG = "mt5gate journal"

_EPILOG = f"""\
exit status: 0 done; 1 when 'list --unresolved' or 'blocks' finds any (so scripts can alert on
it), 'show' finds none or 'acknowledge' has nothing to lift; 2 on bad arguments, a missing or
unreadable journal. --journal defaults to ${ENV_JOURNAL}, --store to ${ENV_STORE}. A journal
file is never created."""


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
    common.add_argument("--store", metavar="URL",
                        help="a PostgreSQL journal: postgresql://user:password@host/db "
                             f"(default: ${ENV_STORE})")  # fmt: skip
    common.add_argument("--schema", default="mt5gate",
                        help="the PostgreSQL schema of the journal (default mt5gate)")  # fmt: skip
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
        raise CliError(
            f"no journal given: pass --journal FILE or --store URL, or set {ENV_JOURNAL} "
            f"or {ENV_STORE}"
        )
    return Path(from_env)


def _source(args: argparse.Namespace) -> Path | str:
    """The journal the arguments name: a file, or a PostgreSQL DSN (flags before the
    environment; ``--journal`` and ``--store`` together are a usage error)."""
    if args.journal is not None and args.store is not None:
        raise CliError("--journal and --store name two journals: pass one")
    if args.store is not None:
        return str(args.store)
    if args.journal is None and os.environ.get(ENV_STORE) and not os.environ.get(ENV_JOURNAL):
        return os.environ[ENV_STORE]
    return _journal_path(args.journal)


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


class Inspectable(Protocol):
    """What ``mt5gate journal`` reads and writes: a :class:`SqliteJournal`, or a PostgreSQL
    store behind :class:`BlockingStore`."""

    def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        key: str | None = None,
        ticket: int | None = None,
        after_sequence: int = 0,
        limit: int | None = None,
    ) -> list[OrderSummary]: ...

    def summary(self, login: int, client_id: ClientOrderId | int) -> OrderSummary | None: ...

    def logins(self) -> list[int]: ...

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]: ...

    def account_block(self, login: int) -> AccountBlock | None: ...

    def acknowledge(self, login: int, note: str) -> AccountBlock | None: ...

    def close(self) -> None: ...


class BlockingStore:
    """A :class:`~mt5gate.orders.postgres.PostgresStore` for synchronous code: each call runs
    to completion on a private event loop (the CLI has no other)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._loop = asyncio.new_event_loop()

    def _run(self, work: Awaitable[T]) -> T:
        return self._loop.run_until_complete(work)

    def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        key: str | None = None,
        ticket: int | None = None,
        after_sequence: int = 0,
        limit: int | None = None,
    ) -> list[OrderSummary]:
        """One summary per order (:meth:`SqliteJournal.summaries`)."""
        work = self.store.summaries(
            login, states=states, key=key, ticket=ticket, after_sequence=after_sequence,
            limit=limit,
        )  # fmt: skip
        return self._run(work)

    def summary(self, login: int, client_id: ClientOrderId | int) -> OrderSummary | None:
        """The summary of one order."""
        return self._run(self.store.summary(login, client_id))

    def logins(self) -> list[int]:
        """The accounts that have events."""
        return self._run(self.store.logins())

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order."""
        return self._run(self.store.history(login, client_id))

    def account_block(self, login: int) -> AccountBlock | None:
        """The account's active block."""
        return self._run(self.store.account_block(login))

    def acknowledge(self, login: int, note: str) -> AccountBlock | None:
        """Lift the account's block."""
        return self._run(self.store.acknowledge(login, note))

    def close(self) -> None:
        """Close the store and the loop."""
        try:
            self._run(self.store.close())
        finally:
            self._loop.close()


def open_store(url: str, schema: str, namespace: int = DEFAULT_NAMESPACE) -> BlockingStore:
    """A PostgreSQL journal for the CLI; its schema must exist at this code's version (the
    CLI never creates or migrates one). Needs the ``fleet`` extra."""
    try:
        from mt5gate.orders.postgres import PostgresStore
    except ImportError:
        raise CliError("--store needs the fleet extra: pip install 'mt5gate[fleet]'") from None
    try:
        store = PostgresStore(url, schema=schema, namespace=namespace, migrate=False)
    except ValueError as error:
        raise CliError(f"--schema: {error}") from None
    opened = BlockingStore(store)
    try:
        opened._run(store.open())
    except BaseException:
        opened.close()
        raise
    return opened


@contextmanager
def _opened(
    source: Path | str, args: argparse.Namespace, *, write: bool = False
) -> Iterator[Inspectable]:
    """The journal ``source`` names, closed when the block ends."""
    journal: Inspectable
    if isinstance(source, Path):
        journal = open_journal(source, args.namespace, write=write)
    else:
        journal = open_store(source, args.schema, args.namespace)
    try:
        yield journal
    finally:
        journal.close()


def _shown(source: Path | str, journal: Inspectable) -> str:
    """How messages name the journal (a store's DSN only as ``user@host:port/db``)."""
    return journal.store.where if isinstance(journal, BlockingStore) else str(source)


def _select_show(journal: Inspectable, args: argparse.Namespace) -> list[OrderSummary]:
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


def _select_list(journal: Inspectable, args: argparse.Namespace) -> list[OrderSummary]:
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


def _blocks(journal: Inspectable, args: argparse.Namespace) -> int:
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


def _acknowledge(source: Path | str, args: argparse.Namespace) -> int:
    if args.login is None:
        raise CliError("acknowledge needs --login: blocks are per account")
    with _opened(source, args, write=True) as journal:
        lifted = journal.acknowledge(args.login, args.note)
    if lifted is None:
        print(f"{PROG}: account {args.login} is not blocked; nothing to acknowledge",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"account {args.login}: block lifted ({len(lifted.sequences)} orders acknowledged); "
          "new orders go again")  # fmt: skip
    return 0


def _run(args: argparse.Namespace) -> int:
    source = _source(args)
    if args.action == "acknowledge":
        return _acknowledge(source, args)
    with _opened(source, args) as journal:
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
            print(f"{PROG}: no order matches in {_shown(source, journal)}", file=sys.stderr)
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
    """Entry point of ``python -m mt5gate.orders.cli``: 0 done, 1 unresolved orders listed or
    no order shown, 2 on a usage problem or an unreadable journal."""
    try:
        args = build_parser().parse_args(argv)
    except CliError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    return run(args)


def run(args: argparse.Namespace) -> int:
    """The journal command on parsed arguments (:func:`build_parser`'s options and ``action``;
    ``mt5gate journal`` parses them with typer): its exit status, and each failure as one line
    on stderr (exit 2)."""
    try:
        return _run(args)
    except (CliError, JournalError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
    except ValueError as error:  # a stored kind or JSON this mt5gate cannot read
        print(f"{PROG}: the journal holds data this mt5gate cannot read: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover - run by the subprocess tests
    sys.exit(main())
