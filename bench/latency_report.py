"""The latency benchmark's section of docs/BENCHMARKS.md: the table, its spread, the targets, and what it means."""

from __future__ import annotations

from bench.bench_relay import BATCH

TARGET_POSTFIX = 1.0  # Relaydesk >= the Postfix relay client, every row
TARGET_RAW = 0.8  # Relaydesk >= 0.8 x the best raw sender with as many connections as it used
TARGET_RAW_N_AT_0 = 0.8  # Relaydesk >= 0.8 x raw N connections, 0 ms, no wait
RELAY, POSTFIX, RAW_ONE = "Relaydesk relay", "Postfix relay client", "raw, 1 connection"
BEFORE = "Relaydesk relay before (1 connection, one command at a time)"


def _label(delay: int, wait: int) -> str:
    return f"{delay} ms" + (f", server waits {wait} ms at end of DATA" if wait else "")


def _verdict(value: float, target: float) -> str:
    return f">= {target:g}: {'met' if value >= target else 'MISSED'}"


def _table(result, rows, cell) -> list[str]:
    lines = ["| one-way delay | " + " | ".join(result.columns) + " |", "|---|" + "---:|" * len(result.columns)]
    for delay, wait in rows:
        lines.append(f"| {_label(delay, wait)} | "
                     + " | ".join(cell(result.cells.get((delay, wait, column))) for column in result.columns) + " |")
    return lines


def _median(result, delay: int, wait: int, column: str) -> float:
    cell = result.cells.get((delay, wait, column))
    return cell.median if cell is not None else 0.0


def _round_trips(result, column: str, connections: int, delay: int, wait: int) -> str:
    """Round trips per message and connection, from a cell: (connections / rate - wait) / (2 x delay)."""
    rate = _median(result, delay, wait, column)
    if not rate or not delay:
        return "?"
    return f"{(connections * 1000 / rate - wait) / (2 * delay):.1f}"


def _switches(result, names: list[str]) -> str:
    """Which of `names` went from BDAT to DATA, and from which row."""
    data_from = getattr(result, "data_from", {})
    said = [f"{name}: DATA from {data_from[name]} on" if name in data_from else f"{name}: BDAT in every row"
            for name in names]
    return "; ".join(said)


def render(result, *, title: str, messages: int, runs: int, warmup: int, connections: int,
           rows: list[tuple[int, int]]) -> str:
    has_postfix = POSTFIX in result.columns
    raw_n = f"raw, {connections} connections"
    pipelined_n = f"raw pipelined, {connections} connections"
    lines = [f"## {title}", "",
             f"Parameters: messages per cell and run = {messages}, runs = {runs} (medians), warm-up rounds before "
             f"the table = {warmup}, connections of the N senders = {connections}, smarthost = {result.smarthost}, "
             "proxy = "
             "`bench/network_process.py` (the delay in each direction), ~5 KB notifications signed with RSA and "
             "Ed25519, one recipient.", "", "Messages per second (medians):", ""]
    lines += _table(result, rows, lambda cell: f"{cell.median:.1f}" if cell else "")
    lines += ["", "Spread (min-max of the runs):", ""]
    lines += _table(result, rows, lambda cell: f"{min(cell.rates):.1f}-{max(cell.rates):.1f}" if cell else "")
    equal = [RAW_ONE] if result.relay_connections <= 1 else [raw_n, pipelined_n]
    has_before = BEFORE in result.columns
    lines += ["", "| row | Relaydesk / Postfix relay client | target | Relaydesk / best raw at equal connections "
              "| target |" + (" Relaydesk / before |" if has_before else ""),
              "|---|---:|---|---:|---|" + ("---:|" if has_before else "")]
    for delay, wait in rows:
        mine = _median(result, delay, wait, RELAY)
        before = _median(result, delay, wait, BEFORE)
        gain = (f" {mine / before:.1f}x |" if before else " |") if has_before else ""
        versus_raw = mine / max(_median(result, delay, wait, column) for column in equal)
        versus_postfix = (f"{mine / _median(result, delay, wait, POSTFIX):.2f}x | "
                          f"{_verdict(mine / _median(result, delay, wait, POSTFIX), TARGET_POSTFIX)}"
                          if has_postfix else "(skipped) | ")
        lines.append(f"| {_label(delay, wait)} | {versus_postfix} | {versus_raw:.2f}x | "
                     f"{_verdict(versus_raw, TARGET_RAW)} |{gain}")
    if (0, 0) in rows:
        at_zero = _median(result, 0, 0, RELAY) / _median(result, 0, 0, raw_n)
        lines += ["", f"Relaydesk / {raw_n} at 0 ms: {at_zero:.2f}x ({_verdict(at_zero, TARGET_RAW_N_AT_0)})."]
    lines += ["", *(f"- {note}" for note in _notes(result, connections, rows, raw_n, pipelined_n, messages))]
    return "\n".join(lines) + "\n"


def _notes(result, connections: int, rows, raw_n: str, pipelined_n: str, messages: int) -> list[str]:
    delay = max(d for d, _ in rows)
    wait = max(w for _, w in rows)
    timing = []
    if (delay, 0) in rows and delay:
        data = RELAY in getattr(result, "data_from", {})
        first = 1 if data else 0  # with DATA a connection's first message waits for its 354: one round trip more
        how = ("Its envelope rides with the previous message's final dot (DATA, RFC 2920 3.1), so a message costs "
               "one round trip, and a connection's first message in a batch two (its envelope goes alone). BDAT "
               "would make that one too, but this smarthost held its BDAT reply back (Postfix answers a BDAT group "
               "longer than its 4 KB input buffer in two writes and, Nagle's algorithm on, the second waits for "
               "the client's ACK), so the relay went back to DATA after its first BDAT messages "
               "(docs/DECISIONS.md)." if data else
               "The smarthost advertises CHUNKING and PIPELINING, so each message goes as MAIL FROM, RCPT TO and "
               "BDAT LAST with its body in one write (RFC 3030): one round trip, a connection's first message in "
               "a batch included.")
        timing = [
            f"Where the relay's time goes: at {delay} ms it needs "
            f"{_round_trips(result, RELAY, max(result.relay_connections, 1), delay, 0)} round trips per message "
            f"and connection (the cell's time per message and connection over {2 * delay} ms). Each connection "
            "streams: while a message is on the wire the next is claimed, composed and signed on the connection's "
            f"worker. {how} "
            f"Before: {_round_trips(result, BEFORE, 1, delay, 0)} on its one connection (MAIL FROM, RCPT TO, DATA "
            "and the body each wait for their reply), raw 1's count.",
            f"What is left between the relay and {pipelined_n}, which streams all {messages} messages over "
            f"{connections} connections opened before the clock: the relay works in SQS batches of {BATCH}, one "
            "after the other here (in production batches of different invocations run side by side), and each "
            f"batch ends with its slowest connection. {BATCH} messages over {connections} connections take at least "
            f"{-(-BATCH // connections) + first} round trips per batch, "
            f"{(-(-BATCH // connections) + first) * -(-messages // BATCH)} for {messages}, where the streaming "
            f"sender needs {-(-messages // connections) + first}. With the server's {wait} ms end-of-DATA wait that "
            "batch "
            "shape is most of the difference.",
            f"{pipelined_n}: `relaydesk.outbound.pipelined` over `relaydesk.outbound.fanout`, the relay's own "
            "client, so the same protocol as the relay (below): "
            f"{_round_trips(result, pipelined_n, connections, delay, 0)} round trips per message and connection "
            f"at {delay} ms, against {_round_trips(result, raw_n, connections, delay, 0)} for stock aiosmtplib "
            f"({raw_n}). With the server's {wait} ms end-of-DATA wait every sender is bound by that wait on each "
            "connection: more connections help there, pipelining little.",
        ]
    if (0, 0) in rows and _median(result, 0, 0, RELAY) and _median(result, 0, 0, RAW_ONE):
        own = 1000 / _median(result, 0, 0, RELAY) - 1000 / _median(result, 0, 0, RAW_ONE)
        said = (f"the relay's own work (compose, sign, record; bench/bench_relay.py breaks it down) adds {own:.1f} ms "
                "a message to raw 1's transaction" if own > 0 else
                "the relay's own work (compose, sign, record) was lost in the machine's noise in this run")
        timing.append(f"At 0 ms {said}. The 0 ms cells are CPU-bound on a 2-core machine shared with other work: "
                      "their spread is wide, unlike the rows with a delay, so that row takes three times the runs.")
    notes = [
        f"Checked after every run of every cell (warm-up included): {result.messages_checked} messages arrived "
        f"exactly once each (by their X-Relaydesk-Email-Id), and all {result.signatures_verified} DKIM signatures "
        "on them (RSA and Ed25519) verified with dkimpy after delivery.",
        f"Relaydesk relay: its path as bench/bench_relay.py drives it (`Relay` + `relay_event`, in-memory "
        "stores, its mailbox shaper as deployed (in-memory states; the address's limits set as high as an admin "
        f"may, so it does not hold the relay back), SQS batches of {BATCH}, its warm connection pool, pipelining, "
        "BDAT and streaming as the smarthost advertises PIPELINING and CHUNKING, up to "
        f"{connections} connections per smarthost); it composes, signs, sends and records inside the clock. The "
        "'before' column is the same relay, stores and smarthost with the send path it had before: one "
        "connection per smarthost, one command at a time (`SmtpSubmission`, `connections_per_smarthost=1`). "
        f"The relay used {result.relay_connections} connection(s) at a time (counted at the proxy: connections "
        "that carried its bytes during a run), so 'best raw at equal connections' is "
        + ("raw 1." if result.relay_connections <= 1 else f"the better of {raw_n} and {pipelined_n}."),
        *timing,
        "raw senders: messages composed and signed the relay's way before the clock, over connections opened "
        "(STARTTLS, AUTH) before it; the clock stops at the last reply.",
        "Protocol of each column, into a smarthost that advertises PIPELINING and CHUNKING: the relay and "
        f"{pipelined_n}: BDAT, a message's MAIL FROM, RCPT TO, BDAT LAST and body in one write, until the "
        "smarthost holds a BDAT reply back, then DATA with the next envelope riding on the previous body "
        f"({_switches(result, [RELAY, pipelined_n])}); the relay before, raw 1 and {raw_n}: DATA, one command at a "
        "time (aiosmtplib); the Postfix relay client: DATA with its envelope pipelined (Postfix's SMTP client does "
        "not send BDAT).",
        "Misses, by their profile: against the best raw sender at equal connections, with a delay and no "
        "end-of-DATA wait, the batch shape above caps the relay near 0.8x with DATA (8 round trips of a "
        "streaming sender against 10), and what each batch adds on top (planning, claims, the first message "
        "composed and signed before anything is written) takes it under; BDAT, which would lift the cap to "
        "7 against 8, is what this Postfix holds back (above). At 0 ms the cells are CPU-bound: the relay "
        "composes, DKIM-signs (RSA and Ed25519) and records each message inside the clock, where the raw senders "
        "prepared theirs before it. bench/bench_relay.py measures it in CPU time of the thread that ran each "
        "phase: signing 0.4 ms a message (the DKIM benchmark's figure; the 0.7-0.9 its wall-time timer shows is "
        "waiting for the GIL while the event loop and the other connections run), composing 0.1, the books "
        "0.15, and about 1.1-1.3 ms of the process's CPU a message in all (the SMTP client's TLS and event loop, "
        "the batch's planning and claims, a worker thread per connection and batch, and the in-memory stores' "
        "deep copies, which the deployed relay does not have); on 2 shared cores that is most of the gap.",
    ]
    if POSTFIX in result.columns:
        notes += [
            f"Postfix relay client (Postfix {result.postfix_version}, Debian's package, an instance of the bench's "
            f"own): `relayhost` through the proxy, SASL PLAIN, `smtp_tls_security_level = secure` (the "
            f"certificate verified for localhost), at most {connections} connections, TLS connections reused "
            "(`smtp_tls_connection_reuse`, through tlsproxy) and cached for 60 s as the relay pools its own for "
            "60 s. The messages are handed to it before the clock and held; the clock runs from `postsuper -H` and "
            "`postqueue -f` to the last `status=sent` in its log, so it includes its queue manager's scheduling "
            "(what makes it slower than the raw senders at 0 ms)."
            + (f" At 0 ms a run of {messages} takes it {messages * 1000 / _median(result, 0, 0, POSTFIX):.0f} ms: "
               "at most that is fixed cost per run, which every row carries; with more messages per run its rates "
               "would be higher." if (0, 0) in rows and _median(result, 0, 0, POSTFIX) else ""),
            "Postfix smarthost: `smtpd_tls_security_level = encrypt`, Cyrus SASL (sasldb, PLAIN and LOGIN), "
            "virtual delivery to a Maildir the bench reads back; its end of DATA asks a policy service "
            "(`check_policy_service` in `smtpd_end_of_data_restrictions`) that answers after the row's wait.",
        ]
    else:
        notes.append(f"**The Postfix columns were skipped**: {result.skipped}.")
    return notes
