#!/usr/bin/env python3
# views_oracle.py - an independent oracle for docket's views, from docs/cli.md and architecture.md:
# `drive` appends seeded-random casework through the real binary; `check` recomputes every view
# from `docket log --json` alone and compares it with `docket views dump` and the query commands.
import base64
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import json
import random
import subprocess
import sys

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
STATUSES = ["received", "validated", "under_consideration", "interview_scheduled", "decided",
            "appealed", "closed", "withdrawn", "leave_cancelled"]
OPEN_STATUSES = STATUSES[:6]  # "open = received .. appealed" (the queue)
# The conditions vocabulary, in the order a decision's conditions are kept (a set over it)
CONDITIONS = ["permission_to_work", "no_permission_to_work", "work_restriction",
              "study_restriction", "reporting", "residence_restriction",
              "no_recourse_to_public_funds"]


# ---- times: RFC 3339 <-> microseconds since 1970 (UTC) ----

def parse_time(s):
    """An RFC 3339 time or a date (midnight UTC) as microseconds; fractions past µs dropped."""
    if len(s) == 10:
        s += "T00:00:00Z"
    main, frac, rest = s[:19], "", s[19:]
    if rest.startswith("."):
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, rest = rest[1:i], rest[i:]
    off = 0
    if rest not in ("Z", "z"):
        sign = -1 if rest[0] == "-" else 1
        off = sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60)
    t = dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    us = (t - EPOCH) // dt.timedelta(microseconds=1) - off * 1000000
    return us + int((frac + "000000")[:6])


def fmt_time(us):
    t = EPOCH + dt.timedelta(microseconds=us)  # (strftime's %Y drops a year's leading zeros)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (t.year, t.month, t.day, t.hour, t.minute,
                                                   t.second, t.microsecond)


def day_of(us):
    return fmt_time(us)[:10]


# ---- the oracle: a case's records folded as the docs describe ----

class Case:
    def __init__(self, cid):
        self.id = cid
        self.status = "none"
        self.type = self.channel = self.received_on = self.assignee = ""
        self.version = self.last_seq = self.voided = 0
        self.decision = None  # dict: seq, outcome, immigration_status, conditions, valid_until
        self.slot = None  # the interview booked now: dict, or None
        self.interview_seq = 0  # the last booking or move in force, booked now or not
        self.open_errors = []
        self.appeal_open, self.appeal_outcome = False, ""
        self.leave_grant_seq = self.leave_cancelled_seq = 0
        self.applicant = {}


def when(rec):
    """An event's effective time: its eff, else its recorded time."""
    return parse_time(rec["eff"] if "eff" in rec else rec["recorded_at"])


def voids(recs):
    """seq -> seq of what voids it. Latest first: a revert voids its target, a rollback every
    earlier event recorded after its time, unless the revert or rollback is voided itself."""
    by = {}
    for k in range(len(recs) - 1, -1, -1):
        r = recs[k]
        if r["seq"] in by:
            continue
        if r["type"] == "event.reverted":
            t = r["data"]["target_seq"]
            if any(x["seq"] == t for x in recs[:k]):
                by.setdefault(t, r["seq"])
        elif r["type"] == "case.rolled_back":
            to = parse_time(r["data"]["to_time"])
            for x in recs[:k]:
                if parse_time(x["recorded_at"]) > to:
                    by.setdefault(x["seq"], r["seq"])
    return by


class Oracle:
    """Every view, recomputed from the log's records."""

    def __init__(self, log):
        self.cases = {}
        self.diary = {}  # (case, booking seq) -> slot dict with its state
        self.stats = {}  # (period, type, outcome, condition) -> count
        self.errors = {}  # report seq -> dict (open, case, reported, resolved, by, took)
        self.decisions = []  # (day, type, outcome, conditions) of every decision in force
        per_case = {}
        for r in log:
            if r["case"]:
                per_case.setdefault(r["case"], []).append(r)
        for cid, recs in per_case.items():
            self.fold(cid, recs)

    def fold(self, cid, recs):
        c = self.cases[cid] = Case(cid)
        vb = voids(recs)
        for r in recs:
            c.version += 1
            c.last_seq = r["seq"]
            if r["seq"] in vb:
                c.voided += 1
            elif r["type"] not in ("event.reverted", "case.rolled_back"):
                self.apply(c, r)

    def apply(self, c, r):
        t, d, seq = r["type"], r["data"], r["seq"]
        if t == "case.opened":
            c.status = "received"
            c.type, c.channel, c.received_on = d["case_type"], d["channel"], d["received_on"]
            c.applicant = dict(d["applicant"])
        elif t == "case.assigned":
            c.assignee = d["caseworker"]
        elif t == "case.status_changed":
            c.status = d["to"]
        elif t == "case.withdrawn":
            c.status = "withdrawn"
        elif t == "case.closed":
            c.status = "closed"
        elif t == "decision.recorded":
            c.status = "decided"
            conds = [x for x in CONDITIONS if x in d.get("conditions", [])]
            c.decision = {"seq": seq, "outcome": d["outcome"], "conditions": conds,
                          "immigration_status": d.get("immigration_status", ""),
                          "valid_until": d.get("valid_until", "")}
            if d["outcome"] == "granted":
                c.leave_grant_seq, c.leave_cancelled_seq = seq, 0
            elif d["outcome"] == "void":
                c.leave_grant_seq = 0
            day = day_of(when(r))
            self.decisions.append((day, c.type, d["outcome"], conds))
            for period in (day[:4], day[:7], day):
                for cond in ["*"] + conds:
                    k = (period, c.type, d["outcome"], cond)
                    self.stats[k] = self.stats.get(k, 0) + 1
        elif t == "leave.cancelled":
            c.status = "leave_cancelled"
            c.leave_grant_seq, c.leave_cancelled_seq = 0, seq
        elif t in ("interview.booked", "interview.rescheduled"):
            if t == "interview.booked":
                c.status = "interview_scheduled"
            old = c.slot or {}
            if c.slot:  # moved away: no longer listed
                del self.diary[(c.id, c.slot["seq"])]
            c.slot = {"seq": seq, "start": parse_time(d["slot_start"]),
                      "end": parse_time(d["slot_end"]),
                      "interviewer": d.get("interviewer", old.get("interviewer")),
                      "location": d.get("location", old.get("location")), "state": "booked"}
            c.interview_seq = seq
            self.diary[(c.id, seq)] = c.slot
        elif t in ("interview.cancelled", "interview.attended", "interview.no_show"):
            if not (t == "interview.cancelled" and c.status in ("withdrawn", "closed")):
                c.status = "under_consideration"
            if t == "interview.cancelled":
                del self.diary[(c.id, c.slot["seq"])]
            else:
                c.slot["state"] = "attended" if t == "interview.attended" else "no_show"
            c.slot = None
        elif t == "error.reported":
            c.open_errors.append(seq)
            self.errors[seq] = {"open": True, "case": c.id, "reported": when(r)}
        elif t == "status.corrected":
            field, to = d["field"], d["to"]
            if field == "status":
                c.status = to
            elif field == "assignee":
                c.assignee = to
            else:
                c.applicant[{"applicant_name": "name"}.get(field, field)] = to
            ref = d["error_ref"]
            c.open_errors.remove(ref)
            e = self.errors[ref]
            e.update(open=False, resolved=when(r), by=seq, took=when(r) - e["reported"])
        elif t == "appeal.lodged":
            c.status, c.appeal_open = "appealed", True
        elif t == "appeal.decided":
            c.appeal_open, c.appeal_outcome = False, d["outcome"]
            if c.status not in ("leave_cancelled", "closed"):  # decided there, status kept
                c.status = "under_consideration" if d["outcome"] == "allowed" else "decided"
        # note.added, document.attached, contact.updated: the status stays

    # -- the views, as (sort key, rendered key, rendered value) --

    def views(self):
        v = {n: [] for n in ("_cases", "case_status", "by_status", "queue", "diary", "stats",
                             "errors")}
        for c in self.cases.values():
            dec = c.decision or {}
            slot = c.slot or {}
            # _cases keeps every case's fold, a case whose opening is voided too
            v["_cases"].append(((c.id,), word(c.id), " ".join(
                ["status=%s version=%d last_seq=%d voided=%d decision_seq=%d interview_seq=%d "
                 "open_errors=%d" % (c.status, c.version, c.last_seq, c.voided, dec.get("seq", 0),
                                     c.interview_seq, len(c.open_errors))]
                + fields([("assignee", c.assignee)]))))
            if c.status == "none":  # its opening is voided: no status, no other entries
                continue
            v["case_status"].append(((c.id,), word(c.id), " ".join(fields([
                ("status", c.status), ("type", c.type), ("channel", c.channel),
                ("received_on", c.received_on), ("assignee", c.assignee),
                ("version", c.version), ("last_seq", c.last_seq), ("voided", c.voided or ""),
                ("outcome", dec.get("outcome", "")),
                ("immigration_status", dec.get("immigration_status", "")),
                ("conditions", ",".join(dec.get("conditions", []))),
                ("valid_until", dec.get("valid_until", "")),
                ("interview", fmt_time(slot["start"]) if slot else ""),
                ("interviewer", slot.get("interviewer", "")),
                ("open_errors", len(c.open_errors) or ""),
                ("appeal", "open" if c.appeal_open else c.appeal_outcome),
                ("leave_cancelled_seq", c.leave_cancelled_seq or ""),
                ("leave_grant_seq", c.leave_grant_seq or "")]))))
            v["by_status"].append(((c.status, c.id), word(c.status) + " " + word(c.id), ""))
            if c.status in OPEN_STATUSES and c.assignee:
                v["queue"].append(((c.assignee, c.received_on, c.id),
                                   " ".join(map(word, (c.assignee, c.received_on, c.id))),
                                   "status=" + c.status))
        for (cid, seq), s in self.diary.items():
            day = day_of(s["start"])
            v["diary"].append(((day, s["start"], s["interviewer"], cid, seq),
                               "%s %s %s %s booked_at=%d" % (day, fmt_time(s["start"]),
                                                            word(s["interviewer"]), word(cid), seq),
                               " ".join(fields([("until", fmt_time(s["end"])),
                                                ("location", s["location"]),
                                                ("state", s["state"])]))))
        for k, n in self.stats.items():
            v["stats"].append((k, " ".join(map(word, k)), "count=%d" % n))
        for seq, e in self.errors.items():
            f = [("case", e["case"]), ("reported", fmt_time(e["reported"]))]
            if not e["open"]:
                f += [("resolved", fmt_time(e["resolved"])), ("by_seq", e["by"]),
                      ("took_s", trunc_div(e["took"], 1000000))]
            v["errors"].append(((not e["open"], seq),
                                "%s %d" % ("open" if e["open"] else "resolved", seq),
                                " ".join(fields(f))))
        for entries in v.values():
            # a view's keys are its parts joined by NUL: they sort as tuples of bytes
            entries.sort(key=lambda e: tuple(x.encode() if isinstance(x, str) else x
                                             for x in e[0]))
        return v


def trunc_div(a, b):
    """a / b rounded toward zero, as C divides."""
    q = abs(a) // b
    return q if a >= 0 else -q


def word(s):
    """A string as the dumps write it: plain words as they are, others JSON-quoted."""
    s = str(s)
    plain = s != "" and all(ch.isascii() and (ch.isalnum() or ch in "._@:+-/,*") for ch in s)
    return s if plain else json.dumps(s, ensure_ascii=False)


def fields(pairs):
    """name=value for each value that is not empty, in the order given."""
    return ["%s=%s" % (n, word(x)) for n, x in pairs if x != "" and x is not None]


# ---- check: the dumped views and the queries against the oracle ----

class Checker:
    def __init__(self, docket):
        self.docket = docket
        self.diffs = 0
        self.checked = 0

    def run(self, *args):
        p = subprocess.run([self.docket, *args], capture_output=True, text=True)
        if p.returncode != 0:
            self.diff("command", " ".join(args), "exit 0", "exit %d: %s" % (p.returncode,
                                                                          p.stderr.strip()))
            return None
        return json.loads(p.stdout)

    def diff(self, view, key, want, got):
        self.diffs += 1
        if self.diffs <= 60:
            print("DIFF %s: %s: expected %s, got %s" % (view, key, want, got))

    def same(self, view, key, want, got):
        self.checked += 1
        if want != got:
            self.diff(view, key, repr(want), repr(got))


def check(docket, log, full=True):
    """Compare the views (synced already) with the oracle's reading of log; 1 if they differ.
    full: also every report the test asks (most of the check's commands)."""
    o = Oracle(log)
    ck = Checker(docket)
    head = log[-1]["seq"]
    views = o.views()
    for name, want in views.items():
        dump = ck.run("views", "dump", name, "--no-sync", "--json")
        if dump is None:
            continue
        ck.same(name, "(as_of_seq)", head, dump["as_of_seq"])
        got = {e["key"]: e["value"] for e in dump["entries"]}
        exp = {k: val for _, k, val in want}
        for k in sorted(set(exp) | set(got)):
            ck.same(name, k, exp.get(k, "(absent)"), got.get(k, "(absent)"))
        # "in key order": the same order as the oracle's keys
        if set(exp) == set(got):
            ck.same(name, "(order)", [k for _, k, _ in want], [e["key"] for e in dump["entries"]])

    # query status S: cases in S, in case-id order
    for st in STATUSES:
        q = ck.run("query", "status", st, "--no-sync", "--json")
        if q is None:
            continue
        exp = []
        for c in sorted((c for c in o.cases.values() if c.status == st), key=lambda c: c.id):
            dec = c.decision or {}
            exp.append({"case": c.id, "status": c.status, "case_type": c.type,
                        "received_on": c.received_on, "assignee": c.assignee or None,
                        "version": c.version, "outcome": dec.get("outcome"),
                        "leave_cancelled_seq": c.leave_cancelled_seq or None,
                        "leave_grant_seq": c.leave_grant_seq or None,
                        "conditions": dec.get("conditions", []),
                        "interview_at": fmt_time(c.slot["start"]) if c.slot else None,
                        "open_errors": len(c.open_errors)})
        ck.same("query status", st, exp, q["items"])

    # queue CW: open assigned cases, oldest received first, then by case id
    actors = sorted({r["data"]["id"] for r in log if r["type"] == "actor.enrolled"})
    for cw in actors:
        q = ck.run("queue", cw, "--no-sync", "--json")
        if q is None:
            continue
        exp = sorted(((c.received_on, c.id, c.status) for c in o.cases.values()
                      if c.assignee == cw and c.status in OPEN_STATUSES))
        ck.same("queue", cw, [{"case": i, "received_on": r, "status": s} for r, i, s in exp],
                q["items"])

    # diary DAY: the day's slots by start time; a day without any, too
    days = sorted({day_of(s["start"]) for s in o.diary.values()}) + ["2018-06-30"]
    for day in days:
        q = ck.run("diary", day, "--no-sync", "--json")
        if q is None:
            continue
        exp = [{"start": fmt_time(s["start"]), "end": fmt_time(s["end"]),
                "interviewer": s["interviewer"], "case": cid, "location": s["location"],
                "state": s["state"], "booked_at": seq}
               for (cid, seq), s in sorted(o.diary.items(), key=lambda kv: (
                   kv[1]["start"], kv[1]["interviewer"].encode(), kv[0][0].encode(), kv[0][1]))
               if day_of(s["start"]) == day]
        ck.same("diary", day, exp, q["items"])

    # report: decisions in force, counted from the decisions themselves (not the stats view)
    rng = random.Random(7)
    types = sorted({c.type for c in o.cases.values() if c.type})
    ranges = [("2019-01-01", "2019-12-31"), ("2020-02-01", "2020-02-29"),
              ("2019-11-15", "2021-03-10"), ("2018-01-01", "2030-12-31"),
              ("1969-12-31", "1970-01-01"), ("1960-01-01", "1970-12-31")]
    ranges += [tuple(sorted((d1[0], d2[0]))) for d1, d2 in
               zip(rng.sample(o.decisions, min(8, len(o.decisions))),
                   rng.sample(o.decisions, min(8, len(o.decisions))))]
    days = sorted({x[0] for x in o.decisions})
    for day in rng.sample(days, min(6, len(days))):  # a single day; and a year to it
        ranges += [(day, day), (day[:4] + "-01-01", day)]
    for ctype in types if full else []:
        for outcome in ("granted", "refused", "void"):
            for cond in (None, "permission_to_work", "reporting", "no_recourse_to_public_funds"):
                for lo, hi in rng.sample(ranges, 3):
                    args = ["report", "--case-type", ctype, "--outcome", outcome, "--from", lo,
                            "--to", hi, "--no-sync", "--json"]
                    if cond:
                        args[5:5] = ["--condition", cond]
                    q = ck.run(*args)
                    if q is None:
                        continue
                    n = sum(1 for day, t, oc, conds in o.decisions if t == ctype and oc == outcome
                            and lo <= day <= hi and (cond is None or cond in conds))
                    ck.same("report", "%s %s %s %s..%s" % (ctype, outcome, cond or "*", lo, hi),
                            n, q["count"])

    # errors: open ones, then resolved ones, each in report (ledger) order
    q = ck.run("errors", "--no-sync", "--json")
    if q is not None:
        exp = []
        for seq, e in sorted(o.errors.items(), key=lambda kv: (not kv[1]["open"], kv[0])):
            exp.append({"report_seq": seq, "case": e["case"], "open": e["open"],
                        "reported_at": fmt_time(e["reported"]),
                        "resolved_at": None if e["open"] else fmt_time(e["resolved"]),
                        "resolved_by_seq": None if e["open"] else e["by"],
                        "resolve_seconds": None if e["open"] else e["took"] / 1e6})
        ck.same("errors", "all", exp, q["items"])

    n = {name: len(v) for name, v in views.items()}
    print("oracle: %d cases, %d view entries %s, %d decisions in force; %d values compared, "
          "%d differences" % (len(o.cases), sum(n.values()), n, len(o.decisions), ck.checked,
                              ck.diffs))
    return 1 if ck.diffs else 0


# ---- drive: seeded-random casework through the real binary ----

CASE_TYPES = ["visa", "euss", "asylum", "citizenship", "family", "work", "study"]
PRODUCTS = {"visa": "VISIT", "euss": "EUS", "asylum": "PROTECTION", "citizenship": "CITIZENSHIP",
            "family": "FAMILY", "work": "WORK", "study": "STUDY"}
CASEWORKERS = ["cw.ana", "cw.bo", "cw.cy"]
SENIORS = ["sc.dan", "sc.eva"]
MIGRATION = "mig.fay"
LOCATIONS = ["Croydon IC room 4", "Lunar House, room 2", "Sheffield/R7", "Glasgow — suite B",
             "remote:video"]
DAY = 86400 * 1000000
HOUR = 3600 * 1000000


def fmt_offset(us, minutes):
    """us written in local time at a UTC offset of `minutes` (RFC 3339)."""
    local = fmt_time(us + minutes * 60000000)[:19]
    sign = "-" if minutes < 0 else "+"
    return local + "%s%02d:%02d" % (sign, abs(minutes) // 60, abs(minutes) % 60)


class Model:
    """What the driver knows of a case, to pick events that mostly apply."""

    def __init__(self, cid, ctype, received):
        self.id, self.type, self.received = cid, ctype, received
        self.status, self.assignee, self.slot = "received", "", None
        self.errors = {}  # open report seq -> its effective time (None: its recorded time)
        self.outcome = self.grant = None  # grant: (seq, effective time or None)
        self.appeal_open = False
        self.applicant = {}
        self.clock = parse_time(received) + 9 * HOUR
        self.seqs = []


class Driver:
    def __init__(self, docket, keydir, seed):
        self.docket, self.keydir = docket, keydir
        self.rng = random.Random(seed)
        self.cases = {}
        self.eff_of = {}  # seq -> effective time given, or None
        self.accepted, self.refused, self.reasons = {}, {}, {}
        self.revoked = set()
        self.undo_targets = {}  # what accepted undos voided or restored, by target type
        self._types = {}  # accepted seq -> its event type

    def key(self, who):
        return "--key=%s/%s.key" % (self.keydir, who)

    def cmd(self, what, args, m=None, eff=None, who=None):
        """Run one appending command; its seq if accepted, else None."""
        argv = [self.docket, *args, "--json"]
        if who:
            argv.append(self.key(who))
        if eff is not None:
            argv += ["--eff", eff if isinstance(eff, str) else fmt_time(eff)]
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode == 0:
            seq = json.loads(p.stdout)["seq"]
            self.accepted[what] = self.accepted.get(what, 0) + 1
            self._types[seq] = what
            self.eff_of[seq] = None if eff is None else (
                eff if isinstance(eff, int) else parse_time(eff))
            if m is not None:
                m.seqs.append(seq)
            return seq
        if p.returncode != 1:
            sys.exit("driver: '%s' exited %d: %s" % (" ".join(argv), p.returncode, p.stderr))
        self.refused[what] = self.refused.get(what, 0) + 1
        why = p.stderr.strip().split(": ", 1)[-1][:70]
        self.reasons[why] = self.reasons.get(why, 0) + 1
        return None

    def query(self, *args):
        p = subprocess.run([self.docket, *args, "--json"], capture_output=True, text=True)
        return json.loads(p.stdout) if p.returncode == 0 else None

    def refresh(self, m):
        """After an undo, a rollback or a correction: the case as docket folds it."""
        s = self.query("status", m.id)
        m.status = s["status"] or "none"
        m.assignee = s.get("assignee") or ""
        iv = s.get("interview") or {}
        m.slot = ({"start": parse_time(iv["slot_start"]), "end": parse_time(iv["slot_end"]),
                   "interviewer": iv.get("interviewer")} if iv.get("active") else None)
        m.errors = {e: self.eff_of.get(e) for e in s.get("open_error_reports") or []}
        m.applicant = dict(s.get("applicant") or {})
        dec = s.get("decision") or {}
        m.outcome = dec.get("outcome")
        g = (s.get("leave") or {}).get("grant_seq")
        m.grant = (g, self.eff_of.get(g)) if g else None
        m.appeal_open = bool(s.get("appeal_open"))

    # -- helpers --

    def tick(self, m, lo=1, hi=12):
        m.clock += self.rng.randint(lo, hi) * DAY + self.rng.randint(0, 8) * HOUR
        return m.clock if self.rng.random() < 0.85 else None  # else: its recorded time

    def active_cws(self):
        return [w for w in CASEWORKERS if w not in self.revoked]

    def anyone(self):
        return self.rng.choice(self.active_cws() + SENIORS + [MIGRATION])

    # -- casework --

    def open(self, cid, ctype=None, received=None, who=None):
        r = self.rng
        ctype = ctype or r.choice(CASE_TYPES)
        received = received or day_of(parse_time("2019-01-02") + r.randint(0, 1400) * DAY)
        m = Model(cid, ctype, received)
        app = {"name": "Applicant %s" % cid, "dob": "19%02d-0%d-1%d" % (r.randint(50, 99),
                                                                       r.randint(1, 9),
                                                                       r.randint(0, 9)),
               "nat": r.choice(["SOM", "ERI", "AFG", "IRN", "SYR", "FRA"])}
        who = who or r.choice(self.active_cws() + [MIGRATION])
        eff = m.clock if who == MIGRATION else None
        if self.cmd("case.opened", ["case", "open", cid, "--type", ctype, "--channel",
                                    r.choice(["online", "assisted_digital", "paper"]),
                                    "--received-on", received, "--ref", "P-" + cid,
                                    "--name", app["name"], "--dob", app["dob"],
                                    "--nationality", app["nat"]], m, eff, who):
            m.applicant = {"name": app["name"], "date_of_birth": app["dob"],
                           "nationality": app["nat"]}
            self.cases[cid] = m
        return m

    def assign(self, m, to=None):
        to = to or self.rng.choice(self.active_cws() + SENIORS)
        if self.cmd("case.assigned", ["case", "assign", m.id, "--to", to], m, self.tick(m),
                    self.rng.choice(SENIORS + [MIGRATION])):
            m.assignee = to

    def status_change(self, m, to):
        if self.cmd("case.status_changed", ["case", "status-change", m.id, "--to", to,
                                            "--reason", "checked"], m, self.tick(m),
                    self.anyone()):
            m.status = to

    def withdraw_or_close(self, m, what):
        if self.cmd("case." + what, ["case", "withdraw" if what == "withdrawn" else "close",
                                     m.id, "--reason", "applicant's request"], m, self.tick(m),
                    self.anyone()):
            m.status = what

    def book(self, m, start=None, interviewer=None, reschedule=False):
        r = self.rng
        self.tick(m, 0, 2)
        if start is None:
            base = (m.slot["start"] if reschedule else m.clock) + r.randint(1, 20) * DAY
            start = base - base % DAY + r.randint(8, 16) * HOUR + r.choice([0, 30]) * 60000000
        off = r.choice([0, 0, 0, 60, -120, 330])  # a UTC offset: the diary's day is UTC
        text = start if isinstance(start, str) else fmt_offset(start, off)
        start = parse_time(text)
        end = start + r.choice([1, 2]) * HOUR
        args = ["interview", "reschedule" if reschedule else "book", m.id,
                "--start", text, "--end", fmt_offset(end, off)]
        if not reschedule or r.random() < 0.4:
            interviewer = interviewer or r.choice(self.active_cws() + SENIORS)
            args += ["--interviewer", interviewer]
        if not reschedule or r.random() < 0.4:
            args += ["--location", r.choice(LOCATIONS)]
        if reschedule:
            args += ["--reason", "interpreter unavailable"]
        eff = m.clock if r.random() < 0.8 else None
        if self.cmd("interview.rescheduled" if reschedule else "interview.booked", args, m, eff,
                    self.anyone()):
            m.slot = {"start": start, "end": end,
                      "interviewer": interviewer or (m.slot or {}).get("interviewer")}
            if not reschedule:
                m.status = "interview_scheduled"

    def interview_end(self, m, how):
        m.clock = max(m.clock, m.slot["end"]) + self.rng.randint(0, 3) * HOUR
        args = ["interview", how, m.id]
        args += ["--reason", "interviewer ill"] if how == "cancel" else ["--notes", "seen"]
        what = {"cancel": "interview.cancelled", "attended": "interview.attended",
                "no-show": "interview.no_show"}[how]
        eff = m.clock if self.rng.random() < 0.85 else None
        if self.cmd(what, args, m, eff, self.anyone()):
            if not (how == "cancel" and m.status in ("withdrawn", "closed")):
                m.status = "under_consideration"
            m.slot = None

    def decide(self, m, outcome=None, eff=None):
        r = self.rng
        outcome = outcome or r.choice(["granted"] * 5 + ["refused"] * 3 + ["void"])
        args = ["decide", m.id, "--" + {"granted": "grant", "refused": "refuse",
                                         "void": "void"}[outcome],
                "--product", PRODUCTS[m.type], "--rationale", "on the evidence",
                "--rules-version", "IR-%d" % r.randint(1, 3)]
        if outcome == "granted":
            status = r.choice(["ILR", "LTR", "LTR", "LTE", "PERMIT"])
            conds = r.sample(["work_restriction", "study_restriction", "reporting",
                              "residence_restriction"], r.randint(0, 2))
            conds += r.choice([[], ["permission_to_work"], ["no_permission_to_work"]])
            nrpf = r.random() < 0.3
            conds += ["no_recourse_to_public_funds"] if nrpf else []
            r.shuffle(conds)
            frm = day_of(m.clock + DAY)
            args += ["--status", status, "--nrpf" if nrpf else "--no-nrpf",
                     "--conditions", ",".join(conds), "--valid-from", frm]
            if status not in ("ILR", "ILE"):
                args += ["--valid-until", "%d%s" % (int(frm[:4]) + r.randint(1, 5), frm[4:])]
        if eff is None:
            eff = self.tick(m)
            # now and then late in a month, written at another offset: the month is UTC's
            if eff is not None and r.random() < 0.25:
                t = EPOCH + dt.timedelta(microseconds=eff)
                nxt = (t.replace(day=28) + dt.timedelta(days=4)).replace(day=1, hour=0, minute=0)
                eff = fmt_offset(int((nxt - EPOCH) / dt.timedelta(microseconds=1))
                                 - r.choice([30, 90]) * 60000000, r.choice([-120, 60]))
        if m.assignee in self.active_cws() and r.random() < 0.7:
            who = m.assignee
        elif r.random() < 0.05:
            who = r.choice(self.active_cws())  # perhaps not theirs: refused
        else:
            who = r.choice(SENIORS)
        seq = self.cmd("decision.recorded", args, m, eff, who)
        if seq:
            m.status, m.outcome = "decided", outcome
            if outcome == "granted":
                m.grant = (seq, self.eff_of[seq])
            elif outcome == "void":
                m.grant = None
            if isinstance(eff, str):
                m.clock = max(m.clock, parse_time(eff))

    def cancel_leave(self, m):
        g = m.grant[1]
        self.tick(m)
        eff = None if g is None else max(m.clock, g + HOUR)
        if self.cmd("leave.cancelled", ["leave", "cancel", m.id, "--reason", "deception",
                                        "--notice-to", "last known address"], m, eff,
                    self.rng.choice(SENIORS)):
            m.status, m.grant = "leave_cancelled", None

    def appeal(self, m, outcome=None):
        if not m.appeal_open:
            if self.cmd("appeal.lodged", ["appeal", "lodge", m.id, "--grounds", "error of law"],
                        m, self.tick(m), self.anyone()):
                m.status, m.appeal_open = "appealed", True
            return
        outcome = outcome or self.rng.choice(["allowed", "dismissed"])
        if self.cmd("appeal.decided", ["appeal", "decide", m.id, "--" + outcome, "--reason",
                                       "tribunal"], m, self.tick(m),
                    self.rng.choice(SENIORS + [MIGRATION])):
            m.appeal_open = False
            if m.status not in ("leave_cancelled", "closed"):
                m.status = "under_consideration" if outcome == "allowed" else "decided"

    def report_error(self, m):
        eff = self.tick(m, 0, 5)
        seq = self.cmd("error.reported", ["error", "report", m.id, "--by", "applicant",
                                          "--description", "details recorded wrongly"],
                       m, eff, self.anyone())
        if seq:
            m.errors[seq] = eff

    def correct(self, m, field=None, to=None):
        r = self.rng
        ref = r.choice(sorted(m.errors))
        choices = ["applicant_name", "date_of_birth", "nationality"]
        if m.assignee:
            choices.append("assignee")
        if m.status in ("received", "validated", "under_consideration", "withdrawn"):
            choices += ["status"] * 2
        field = field or r.choice(choices)
        frm = {"assignee": m.assignee, "status": m.status, "applicant_name":
               m.applicant.get("name"), "date_of_birth": m.applicant.get("date_of_birth"),
               "nationality": m.applicant.get("nationality")}[field]
        if to is None:
            to = {"assignee": r.choice(self.active_cws() + SENIORS),
                  "status": r.choice(["received", "validated", "under_consideration",
                                      "withdrawn"]),
                  "applicant_name": "Corrected Name %d" % r.randint(1, 99),
                  "date_of_birth": "1980-0%d-2%d" % (r.randint(1, 9), r.randint(0, 8)),
                  "nationality": r.choice(["SOM", "ERI", "SDN"])}[field]
        self.tick(m, 0, 6)
        w = m.errors[ref]
        eff = None if w is None else max(m.clock, w)
        if self.cmd("status.corrected", ["error", "correct", m.id, "--error-ref", str(ref),
                                         "--field", field, "--from", frm or "-", "--to", to,
                                         "--reason", "evidence seen"], m, eff,
                    r.choice(SENIORS + [MIGRATION])):
            self.refresh(m)

    def undo(self, m, target=None):
        r = self.rng
        explicit = target is not None  # a scripted undo: with four eyes, to be accepted
        if target is None:
            x = r.random()
            target = (m.seqs[-1] if x < 0.55 else r.choice(m.seqs[-4:]) if x < 0.85
                      else r.choice(m.seqs))
        ttype = self._types.get(target, "?")
        args = ["undo", str(target), "--reason", "entered in error", "--reason-code",
                r.choice(["caseworker_error", "duplicate", "data_entry", "other"])]
        if explicit or r.random() < 0.85:
            who, co = r.sample(SENIORS, 2)
            args.append("--cosign=%s/%s.key" % (self.keydir, co))
        else:
            who = r.choice(self.active_cws())
        seq = self.cmd("event.reverted", args, m, None, who)
        if seq:
            self.undo_targets[ttype] = self.undo_targets.get(ttype, 0) + 1
            self.refresh(m)
        return seq

    def rollback(self, m, to=None):
        if to is None:
            recs = self.query("log", "--case", m.id)
            i = self.rng.randrange(0, len(recs) - 1)
            a, b = parse_time(recs[i]["recorded_at"]), parse_time(recs[i + 1]["recorded_at"])
            to = a if self.rng.random() < 0.5 else (a + b) // 2  # exactly a record's time, too
        who, co = self.rng.sample(SENIORS, 2)
        seq = self.cmd("case.rolled_back", ["rollback", m.id, "--to",
                                            to if isinstance(to, str) else fmt_time(to),
                                            "--reason",
                                            "bulk entry went wrong",
                                            "--cosign=%s/%s.key" % (self.keydir, co)],
                       m, None, who)
        if seq:
            self.refresh(m)
        return seq

    def note(self, m):
        self.cmd("note.added", ["note", m.id, "--text", "called the applicant"], m, self.tick(m),
                 self.anyone())

    def attach_or_contact(self, m):
        if self.rng.random() < 0.5:
            self.cmd("document.attached", ["attach", m.id, "--sha256", "%064x" %
                                           self.rng.getrandbits(256), "--kind", "passport",
                                           "--title", "passport scan"], m, self.tick(m),
                     self.anyone())
        else:
            self.cmd("contact.updated", ["contact", m.id, "--email", "a%d@example.org" %
                                         self.rng.randint(1, 999)], m, self.tick(m),
                     self.anyone())

    # -- the run --

    def scripted(self):
        """Edge cases first, so that every run has them whatever the seed draws."""
        # the same slot booked again after an attended interview: listed twice
        m = self.open("ED-1", "visa", "2020-01-20", "cw.ana")
        self.assign(m, "cw.ana")
        self.status_change(m, "validated")
        self.status_change(m, "under_consideration")
        slot = parse_time("2020-02-03T10:00:00Z")
        self.book(m, slot, "cw.bo")
        self.interview_end(m, "attended")
        self.book(m, slot, "cw.bo")
        self.interview_end(m, "no-show")
        self.decide(m, "granted", "2020-02-29T23:30:00-01:00")  # UTC: 1 March
        self.report_error(m)
        self.correct(m, "applicant_name", "Ann Example")
        c = m.seqs[-1]
        u = self.undo(m, c)  # the report is open again
        self.undo(m, u)  # and resolved again: an undo of an undo restores
        # an opening voided (no status, no entries), and one voided and restored
        m2 = self.open("ED-2", "euss", "2021-05-05", "cw.bo")
        self.undo(m2, m2.seqs[0])
        m3 = self.open("ED-3", "study", "2021-06-06", "cw.bo")
        u = self.undo(m3, m3.seqs[0])
        self.undo(m3, u)
        # refusal, appeal allowed, a grant, its leave cancelled after a closure; then a
        # rollback to just after the refusal, and that rollback undone
        m4 = self.open("ED-4", "asylum", "2019-03-01", MIGRATION)
        self.assign(m4, "cw.cy")
        self.status_change(m4, "validated")
        self.status_change(m4, "under_consideration")
        self.decide(m4, "refused")
        cut = parse_time(self.query("log", "--case", m4.id)[-1]["recorded_at"])
        self.appeal(m4)
        self.appeal(m4, "allowed")
        self.decide(m4, "granted")
        self.withdraw_or_close(m4, "closed")
        self.cancel_leave(m4)
        r = self.rollback(m4, cut)
        self.undo(m4, r)
        # a grant appealed (an upgrade appeal), its leave cancelled with the appeal open, the
        # case closed, then the appeal decided: closed kept, the outcome recorded
        m12 = self.open("ED-12", "asylum", "2023-04-03", "cw.bo")
        self.status_change(m12, "validated")
        self.status_change(m12, "under_consideration")
        self.decide(m12, "granted")
        self.appeal(m12)
        self.cancel_leave(m12)
        self.withdraw_or_close(m12, "closed")
        self.appeal(m12, "dismissed")
        # a withdrawal that leaves a booking, its slot freed, then reopened by a correction
        m5 = self.open("ED-5", "family", "2022-02-10", "cw.ana")
        self.status_change(m5, "validated")
        self.book(m5, None, "sc.eva")
        self.withdraw_or_close(m5, "withdrawn")
        self.interview_end(m5, "cancel")
        self.report_error(m5)
        self.correct(m5, "status", "under_consideration")
        # a grant voided by undo (four eyes), then a refusal: stats count the refusal only
        m6 = self.open("ED-6", "work", "2022-12-01", "cw.ana")
        self.status_change(m6, "validated")
        self.status_change(m6, "under_consideration")
        self.decide(m6, "granted")
        self.undo(m6, m6.seqs[-1])
        self.decide(m6, "refused")
        # a rollback over an undo brings its target back; undoing the rollback voids it again
        m7 = self.open("ED-7", "citizenship", "2023-01-09", "cw.bo")
        self.note(m7)
        t = self.query("log", "--case", m7.id)[-1]["recorded_at"]
        self.undo(m7, m7.seqs[-1])
        r = self.rollback(m7, parse_time(t))
        self.undo(m7, r)
        # a later rollback to an earlier time voids an earlier rollback, restoring what that
        # one voided before the later one's time; its time given to 7 digits, which docket
        # truncates to µs (0.1 µs before a record's time: that record is after it)
        m8 = self.open("ED-8", "visa", "2023-02-01", "cw.ana")
        self.status_change(m8, "validated")
        t2 = self.query("log", "--case", m8.id)[-1]["recorded_at"]
        self.note(m8)
        self.note(m8)
        t4 = self.query("log", "--case", m8.id)[-1]["recorded_at"]
        self.rollback(m8, parse_time(t2))  # voids both notes
        self.note(m8)
        self.rollback(m8, fmt_time(parse_time(t4) - 1)[:26] + "9Z")  # the first note is back
        # before 1970 and at the edges of days: a slot at 00:30+01:00 is the day before in
        # UTC, a decision at 23:30-01:00 on 31 December 1969 is 1970's
        m9 = self.open("ED-9", "asylum", "1968-07-01", MIGRATION)
        self.assign(m9, "sc.dan")
        self.status_change(m9, "validated")
        self.book(m9, "1969-03-01T00:30:00.123456789+01:00", "sc.dan")
        self.interview_end(m9, "attended")
        self.decide(m9, "granted", "1969-12-31T23:30:00-01:00")
        self.report_error(m9)
        if m9.errors:
            self.correct(m9, "nationality", "SDN")
        # a case id that is not a plain word: quoted in the dumps, ordered by its bytes
        m10 = self.open("ED 10/é", "euss", "2020-02-03", "cw.bo")
        self.assign(m10, "cw.bo")
        self.status_change(m10, "validated")
        self.book(m10, "2020-02-03T10:00:00Z", "cw.ana")

    def random_step(self, n_cases):
        r = self.rng
        live = [m for m in self.cases.values() if m.status != "none"]
        if len(self.cases) < n_cases and (len(live) < 8 or r.random() < 0.07):
            self.open("C-%02d" % (len(self.cases) + 1))
            return
        m = r.choices(live, [0.2 if m.status in ("closed", "leave_cancelled") else 1
                             for m in live])[0]
        s, acts = m.status, []
        add = lambda w, f, *a: acts.append((w, f, a))
        if s == "received":
            add(3, self.status_change, m, "validated")
            add(3 if not m.assignee else 0.4, self.assign, m)
            add(0.15, self.withdraw_or_close, m, "withdrawn")
        elif s == "validated":
            add(3, self.status_change, m, "under_consideration")
            add(2, self.book, m)
            add(2 if not m.assignee else 0.4, self.assign, m)
            add(0.15, self.withdraw_or_close, m, "withdrawn")
        elif s == "under_consideration":
            add(3, self.decide, m)
            add(1.5, self.book, m)
            add(0.5, self.status_change, m, "validated")
            add(0.15, self.withdraw_or_close, m, "withdrawn")
            add(1 if not m.assignee else 0.3, self.assign, m)
        elif s == "interview_scheduled":
            add(3, self.interview_end, m, "attended")
            add(1, self.interview_end, m, "no-show")
            add(1, self.book, m, None, None, True)
            add(0.7, self.interview_end, m, "cancel")
            add(0.2, self.withdraw_or_close, m, "withdrawn")
        elif s == "decided":
            add(1.5 if m.outcome in ("granted", "refused") else 0, self.appeal, m)
            add(0.6, self.withdraw_or_close, m, "closed")
            add(0.7 if m.grant and not m.slot else 0, self.cancel_leave, m)
            add(0.3, self.assign, m)
        elif s == "appealed":
            add(3, self.appeal, m)
            add(0.5 if m.grant and not m.slot else 0, self.cancel_leave, m)
        elif s in ("withdrawn", "leave_cancelled"):
            add(1, self.withdraw_or_close, m, "closed")
        if s in ("withdrawn", "closed") and m.slot:
            add(2, self.interview_end, m, "cancel")
        if s == "closed" and m.grant and not m.slot:
            add(0.5, self.cancel_leave, m)
        if s in ("leave_cancelled", "closed") and m.appeal_open:
            add(2, self.appeal, m)  # an appeal left open by a leave cancellation
        add(0.8, self.note, m)
        add(0.3, self.attach_or_contact, m)
        add(0.8 if len(m.errors) < 5 else 0, self.report_error, m)
        add(2 if m.errors else 0, self.correct, m)
        add(0.7, self.undo, m)
        add(0.12 if len(m.seqs) > 3 else 0, self.rollback, m)
        w, f, a = r.choices(acts, [x[0] for x in acts])[0]
        f(*a)

    def project(self):
        p = subprocess.run([self.docket, "project"], capture_output=True, text=True)
        if p.returncode:
            sys.exit("driver: docket project exited %d: %s" % (p.returncode, p.stderr))

    def run(self, steps, n_cases):
        self.mid_diffs = 0
        self.scripted()
        scripted_refused = sum(self.refused.values())
        for i in range(steps):
            if i == steps * 2 // 3:  # a revoked caseworker's queue is still listed
                if subprocess.run([self.docket, "actor", "revoke", self.key("admin"), "--id",
                                   "cw.cy", "--reason", "left"], capture_output=True).returncode:
                    sys.exit("driver: cannot revoke cw.cy")
                self.revoked.add("cw.cy")
            self.random_step(n_cases)
            # the live views follow in batches of a few records (undos re-fold a case there)
            if self.rng.random() < 0.4:
                self.project()
            if i in (steps // 3, steps * 2 // 3):  # and agree with the oracle on the way
                self.project()
                with contextlib.redirect_stdout(sys.stderr):
                    print("views at step %d of %d:" % (i, steps))
                    self.mid_diffs += check(self.docket, self.query("log"), full=False)
        return {"mid_run_differences": self.mid_diffs, "scripted_refused": scripted_refused,
                "accepted": sum(self.accepted.values()), "refused": sum(self.refused.values()),
                "accepted_by_type": dict(sorted(self.accepted.items())),
                "refused_by_type": dict(sorted(self.refused.items())),
                "undone_by_target_type": dict(sorted(self.undo_targets.items())),
                "cases": len(self.cases),
                "refusals": dict(sorted(self.reasons.items(), key=lambda kv: -kv[1])[:12])}


# ---- key files resealed with the cheapest Argon2id: each command unseals in µs ----

def reseal(path, passphrase):
    """Reseal a key file (kdf ops=1 mem=8192, libsodium's minimum; docket reads the kdf
    parameters from the file) through libsodium via ctypes. False if libsodium is not found."""
    name = ctypes.util.find_library("sodium")
    if name is None:
        return False
    so = ctypes.CDLL(name)
    if so.sodium_init() < 0:
        return False
    pw = passphrase.encode()

    def derive(salt, ops, mem):
        key = ctypes.create_string_buffer(32)
        if so.crypto_pwhash(key, ctypes.c_ulonglong(32), pw, ctypes.c_ulonglong(len(pw)), salt,
                            ctypes.c_ulonglong(ops), ctypes.c_size_t(mem), ctypes.c_int(2)):
            raise RuntimeError("crypto_pwhash failed")
        return key.raw
    lines = open(path).read().splitlines()
    f = dict(line.split(": ", 1) for line in lines[1:])
    kdf = dict(p.split("=") for p in f["kdf"].split()[1:])
    salt, nonce, sealed = (base64.b64decode(f[k]) for k in ("salt", "nonce", "sealed"))
    secret = ctypes.create_string_buffer(len(sealed) - 16)
    if so.crypto_secretbox_open_easy(secret, sealed, ctypes.c_ulonglong(len(sealed)), nonce,
                                     derive(salt, int(kdf["ops"]), int(kdf["mem"]))):
        raise RuntimeError("cannot unseal " + path)
    out = ctypes.create_string_buffer(len(sealed))
    so.crypto_secretbox_easy(out, secret.raw, ctypes.c_ulonglong(len(secret.raw)), nonce,
                             derive(salt, 1, 8192))
    f["kdf"] = "argon2id13 ops=1 mem=8192"
    f["sealed"] = base64.b64encode(out.raw).decode()
    with open(path, "w") as fh:
        fh.write(lines[0] + "\n" + "".join("%s: %s\n" % kv for kv in f.items()))
    return True


def main(argv):
    if len(argv) >= 3 and argv[1] == "reseal":
        import os
        ok = all(reseal(p, os.environ["DOCKET_PASSPHRASE"]) for p in argv[2:])
        return 0 if ok else 1
    if len(argv) == 6 and argv[1] == "drive":
        d = Driver(argv[2], argv[3], int(argv[4]))
        summary = d.run(int(argv[5]), 30)
        print(json.dumps(summary, indent=1))
        return 0
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], json.load(open(argv[3])))
    sys.exit("usage: views_oracle.py drive DOCKET KEYDIR SEED STEPS | check DOCKET LOG.json | "
             "reseal KEYFILE...")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
