#!/usr/bin/env python3
"""Reference results for the Logs Insights conformance test, computed independently of the
Rust engine: a seeded corpus generator plus, for every query, a hand-written Python
computation of its expected rows under the semantics decisions A1-A31
(../shared/reference/insights-language.md). Standard library only.

Usage: reference.py OUT_DIR  -> writes audit.jsonl, cloudwatch.jsonl, cases.json
"""

import datetime
import decimal
import functools
import ipaddress
import json
import math
import os
import random
import re
import statistics
import sys

SEED = 20240607
T0 = 1_735_689_600_000  # 2025-01-01 00:00:00 UTC
SPAN = 3 * 86_400_000
AUDIT_GROUP, AUDIT_STREAM = "golden-path-audit", "gateway"
CW_DEFAULT_GROUP, CW_DEFAULT_STREAM = "imported", "cloudwatch.jsonl"


class Ts(int):
    """A timestamp value (renders as YYYY-MM-DD HH:MM:SS.mmm)."""


# ------------------------------------------------------------------------------------------
# Rendering (A1, A2, A17) and collation (A12).

def fmt_ts(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S") + ".%03d" % (ms % 1000)


def render(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, Ts):
        return fmt_ts(int(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        if v == 0:
            return "0"
        if v == int(v):
            return str(int(v))
        r = repr(v)
        if "e" in r or "E" in r:
            r = format(decimal.Decimal(r), "f")
        return r
    return str(v)


NUMERIC = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def as_number(v):
    if v is None:
        return None
    if isinstance(v, (bool, int, float)):
        return int(v) if isinstance(v, bool) else v
    if isinstance(v, str) and NUMERIC.match(v):
        return float(v) if "." in v else int(v)
    return None


def chunks(s):
    return re.findall(r"[0-9]+|[^0-9]+", s)


def natural_cmp(a, b):
    for x, y in zip(chunks(a), chunks(b)):
        if x[0].isdigit() and y[0].isdigit():
            k1, k2 = (len(x), x), (len(y), y)
        else:
            k1, k2 = x, y
        if k1 != k2:
            return -1 if k1 < k2 else 1
    ca, cb = len(chunks(a)), len(chunks(b))
    return (ca > cb) - (ca < cb)


def collate(a, b):
    na, nb = as_number(a), as_number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    if na is not None:
        return 1
    if nb is not None:
        return -1
    return natural_cmp(render(a), render(b))


def sort_rows(rows, keys):
    """keys: list of (fn, descending); nulls last either way; stable."""
    def cmp(r1, r2):
        for fn, desc in keys:
            a, b = fn(r1), fn(r2)
            if a is None and b is None:
                continue
            if a is None:
                return 1
            if b is None:
                return -1
            c = collate(a, b)
            if desc:
                c = -c
            if c:
                return c
        return 0
    return sorted(rows, key=functools.cmp_to_key(cmp))


# ------------------------------------------------------------------------------------------
# Time (A8) and aggregates (A13-A16).

def floor_ms(ts, period):
    return ts - ts % period


def ceil_ms(ts, period):
    f = floor_ms(ts, period)
    return f if f == ts else f + period


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    i = max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))
    return float(v[i])


def avg(values):
    return (sum(values) / len(values)) if values else None


def stddev(values):
    return statistics.stdev(values) if len(values) >= 2 else None


# ------------------------------------------------------------------------------------------
# The corpus.

USERS = ["user-%02d" % i for i in range(1, 13)]
FEATURES = ["support-bot", "search", "batch", "summarize"]
MODELS = ["model-a", "model-b", "model-c"]
AGENTS = ["curl/8.4.0", "python-requests/2.31", "openai-python/1.30", "Mozilla/5.0"]
POLICIES = ["pii:EMAIL", "pii:PHONE", "topic:Investing", "word:secret"]


def make_ip(rng):
    kind = rng.random()
    if kind < 0.45:
        return "10.%d.%d.%d" % (rng.randrange(256), rng.randrange(256), rng.randrange(1, 255))
    if kind < 0.75:
        return "192.168.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
    if kind < 0.95:
        return "2001:db8::%x" % rng.randrange(1, 65535)
    return "not-an-ip"


def generate():
    rng = random.Random(SEED)
    offsets = rng.sample(range(0, SPAN, 7), 1500)  # unique, distinct from each other
    offsets.sort()
    audit, cw = [], []
    records = []
    n_audit = 0
    for i, off in enumerate(offsets):
        ts = T0 + off
        kind = rng.random()
        if kind < 0.70:
            n_audit += 1
            guard = "INTERVENED" if rng.random() < 0.2 else "NONE"
            pol = sorted(rng.sample(POLICIES, rng.randrange(0, 3))) if guard == "INTERVENED" else []
            status = rng.choices([200, 400, 429, 500, 502], [80, 5, 8, 4, 3])[0]
            latency = rng.randrange(20, 2000)
            vault = None if status != 200 else "prompts/%s/req-%05d" % (fmt_ts(ts)[:13].replace("-", "/").replace(" ", "/"), n_audit)
            ev = {
                "timestamp": ts,
                "requestId": "req-%05d" % n_audit,
                "userSub": rng.choice(USERS),
                "feature": rng.choice(FEATURES),
                "model": rng.choice(MODELS),
                "modelAlias": rng.choice(["fast", "smart"]),
                "promptHash": "hmac-sha256:%064x" % rng.getrandbits(256),
                "latencyMs": latency,
                "modelLatencyMs": max(0, latency - rng.randrange(1, 20)),
                "guardrailId": "gr-main",
                "guardrailVersion": rng.choice(["1", "2"]),
                "guardrailAction": guard,
                "inputAction": "ANONYMIZED" if guard == "INTERVENED" and rng.random() < 0.5 else "NONE",
                "outputAction": "BLOCKED" if guard == "INTERVENED" and rng.random() < 0.3 else "NONE",
                "policies": pol,
                "inputTokens": rng.randrange(1, 4000),
                "outputTokens": rng.randrange(0, 1000),
                "status": status,
                "stream": rng.random() < 0.5,
                "vaultKey": vault,
                "sourceIp": make_ip(rng),
                "userAgent": rng.choice(AGENTS),
            }
            line = json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
            audit.append(line)
            rec = {"@timestamp": Ts(ts), "@message": line, "@log": AUDIT_GROUP,
                   "@logStream": AUDIT_STREAM, "@ingestionTime": Ts(ts)}
            rec.update(flatten(ev))
            records.append(rec)
        else:
            ingestion = ts + rng.randrange(0, 3000)
            if kind < 0.85:
                # A JSON event as the AWS deployment writes it, with nesting and arrays.
                msg_obj = {
                    "requestId": "cw-%05d" % i,
                    "userSub": rng.choice(USERS),
                    "feature": rng.choice(FEATURES),
                    "model": rng.choice(MODELS),
                    "latencyMs": rng.randrange(20, 2000),
                    "status": rng.choice([200, 200, 200, 500]),
                    "client": {"ip": make_ip(rng), "tags": rng.sample(["mobile", "web", "cli"], rng.randrange(1, 3))},
                    "x-trace-id": "t-%04x" % rng.getrandbits(16),
                    "@source": "lambda",
                }
                if rng.random() < 0.3:
                    msg_obj["level"] = rng.choice(["ERROR", "WARN"])
                    msg_obj["error"] = rng.choice(["TimeoutException", "ThrottlingException: slow down"])
                message = json.dumps(msg_obj, separators=(", ", ": "))
                fields = flatten(msg_obj)
            elif kind < 0.93:
                method = rng.choice(["GET", "POST"])
                user = rng.choice(["alice", "bob", "carol"])
                lat = rng.randrange(5, 900)
                message = "user=%s, method:%s, latency := %d" % (user, method, lat)
                fields = {}
            else:
                code = rng.choice([200, 404, 500])
                message = "%s /v1/chat/completions %d latency=%dms user=%s" % (
                    rng.choice(["GET", "POST"]), code, rng.randrange(5, 900), rng.choice(USERS))
                if code == 500:
                    message = "ERROR " + message
                fields = {}
            line_obj = {"timestamp": ts, "message": message, "ingestionTime": ingestion}
            variant = rng.random()
            if variant < 0.5:
                line_obj["logStreamName"] = "2025/01/01/[$LATEST]%s" % rng.choice(["aaa", "bbb"])
                line_obj["logGroup"] = "/aws/lambda/golden-path"
                group, stream = "/aws/lambda/golden-path", line_obj["logStreamName"]
            elif variant < 0.8:
                line_obj["logStream"] = "stream-%d" % rng.randrange(2)
                group, stream = CW_DEFAULT_GROUP, line_obj["logStream"]
            else:
                group, stream = CW_DEFAULT_GROUP, CW_DEFAULT_STREAM
            cw.append(json.dumps(line_obj, separators=(",", ":")))
            rec = {"@timestamp": Ts(ts), "@message": message, "@log": group,
                   "@logStream": stream, "@ingestionTime": Ts(ingestion)}
            rec.update(fields)
            records.append(rec)
    return audit, cw, records


def flatten(obj, prefix=""):
    out = {}
    if isinstance(obj, dict):
        items = obj.items()
    else:
        items = ((str(i), v) for i, v in enumerate(obj))
    for k, v in items:
        if not prefix and isinstance(obj, dict) and k.startswith("@"):
            k = "@" + k
        name = prefix + k
        if isinstance(v, (dict, list)):
            out.update(flatten(v, name + "."))
        elif v is not None:
            out[name] = v
    return out


# ------------------------------------------------------------------------------------------
# Cases: a query, its range, and the expected rows computed directly in Python.

def row(*pairs):
    return [{"field": f, "value": render(v)} for f, v in pairs if render(v) is not None]


def audit_only(recs):
    return [r for r in recs if r["@log"] == AUDIT_GROUP]


def groups(recs, key):
    out = {}
    for r in recs:
        out.setdefault(key(r), []).append(r)
    return out


def has(r, *names):
    return all(r.get(n) is not None for n in names)


def build_cases(records):
    cases = []

    def case(name, query, expected, ordered=False, approx=(), start=None, end=None):
        cases.append({"name": name, "query": query, "expected": expected, "ordered": ordered,
                      "approx": list(approx), "start": start, "end": end})

    R = records
    A = audit_only(R)
    by_ts_desc = sorted(R, key=lambda r: -r["@timestamp"])

    # --- fields / sort / limit / default projection
    case("c01_recent", "fields @timestamp, @message | sort @timestamp desc | limit 25",
         [row(("@timestamp", r["@timestamp"]), ("@message", r["@message"])) for r in by_ts_desc[:25]],
         ordered=True)
    case("c02_user_prompts", 'filter userSub = "user-07" | fields requestId, latencyMs, @log',
         [row(("requestId", r["requestId"]), ("latencyMs", r["latencyMs"]), ("@log", r["@log"]))
          for r in R if r.get("userSub") == "user-07"])
    one = next(r for r in A if r["requestId"] == "req-00005")
    case("c03_default_projection", 'filter requestId = "req-00005"',
         [row(("@timestamp", one["@timestamp"]), ("@message", one["@message"]))])
    asc = sorted(R, key=lambda r: r["@timestamp"])
    case("c04_sort_asc_limit", "fields requestId, @timestamp | sort @timestamp asc | limit 3",
         [row(("requestId", r.get("requestId")), ("@timestamp", r["@timestamp"])) for r in asc[:3]],
         ordered=True)
    batch = sort_rows([r for r in R if r.get("feature") == "batch"], [(lambda r: r.get("requestId"), False)])
    case("c05_fields_union", 'fields requestId | fields userSub | filter feature = "batch" | sort requestId asc | limit 5',
         [row(("requestId", r["requestId"]), ("userSub", r["userSub"])) for r in batch[:5]], ordered=True)
    u3 = [r for r in R if r.get("userSub") == "user-03"]
    case("c06_display_last_wins", 'fields requestId, userSub, feature | display feature | display requestId | filter userSub = "user-03"',
         [row(("requestId", r["requestId"])) for r in u3])
    top = sort_rows(R, [(lambda r: r.get("latencyMs"), True), (lambda r: r.get("requestId"), False)])[:10]
    case("c07_multi_key_sort", "sort latencyMs desc, requestId asc | limit 10 | fields requestId, latencyMs",
         [row(("requestId", r["requestId"]), ("latencyMs", r["latencyMs"])) for r in top], ordered=True)

    # --- filter operators
    case("c08_eq_and", 'filter feature = "support-bot" and status = 200 | stats count(*) as n',
         [row(("n", sum(1 for r in R if r.get("feature") == "support-bot" and r.get("status") == 200)))])
    case("c09_range", "filter latencyMs > 500 and latencyMs <= 900 | stats count(*)",
         [row(("count(*)", sum(1 for r in R if has(r, "latencyMs") and 500 < r["latencyMs"] <= 900)))])
    errs = groups([r for r in R if has(r, "status") and r["status"] != 200], lambda r: r["status"])
    case("c10_ne_by", "filter status != 200 | stats count(*) as errors by status",
         [row(("status", k), ("errors", len(v))) for k, v in errs.items()])
    case("c11_or_lt_ge", "filter latencyMs >= 1900 or outputTokens < 10 | stats count(*)",
         [row(("count(*)", sum(1 for r in R if (has(r, "latencyMs") and r["latencyMs"] >= 1900)
                               or (has(r, "outputTokens") and r["outputTokens"] < 10))))])
    g = groups([r for r in R if has(r, "guardrailAction") and r["guardrailAction"] != "NONE"], lambda r: r["guardrailAction"])
    case("c12_not", 'filter not (guardrailAction = "NONE") | stats count(*) by guardrailAction',
         [row(("guardrailAction", k), ("count(*)", len(v))) for k, v in g.items()])
    g = groups([r for r in R if r.get("model") in ("model-a", "model-c")], lambda r: r["model"])
    case("c13_in", 'filter model in ["model-a", "model-c"] | stats count(*) by model',
         [row(("model", k), ("count(*)", len(v))) for k, v in g.items()])
    # A5: events without `model` match neither `in` nor `not in`.
    g = groups([r for r in R if has(r, "model") and r["model"] not in ("model-a",)], lambda r: r["model"])
    case("c14_not_in_missing_is_false", 'filter model not in ["model-a"] | stats count(*) by model',
         [row(("model", k), ("count(*)", len(v))) for k, v in g.items()])
    case("c15_like_substring", 'filter userAgent like "curl" | stats count(*)',
         [row(("count(*)", sum(1 for r in R if "curl" in (r.get("userAgent") or ""))))])
    g = groups([r for r in R if has(r, "userAgent") and re.search(r"(?i)PYTHON", r["userAgent"])], lambda r: r["userAgent"])
    case("c16_like_regex_ci", "filter userAgent like /(?i)PYTHON/ | stats count(*) by userAgent",
         [row(("userAgent", k), ("count(*)", len(v))) for k, v in g.items()])
    m = sorted((r["requestId"] for r in R if has(r, "requestId") and re.search(r"^req-00[0-4]", r["requestId"])))
    m = sort_rows([{"requestId": x} for x in m], [(lambda r: r["requestId"], False)])
    case("c17_match_regex", "filter requestId =~ /^req-00[0-4]/ | fields requestId | sort requestId asc",
         [row(("requestId", r["requestId"])) for r in m], ordered=True)
    case("c18_not_like_missing_is_false", 'filter userAgent not like "curl" | stats count(*)',
         [row(("count(*)", sum(1 for r in R if has(r, "userAgent") and "curl" not in r["userAgent"])))])
    r10 = next(r for r in A if r["requestId"] == "req-00010")
    L, M = r10["latencyMs"], r10["modelLatencyMs"]
    case("c19_arithmetic",
         'fields latencyMs - modelLatencyMs as overhead, latencyMs * 2 as dbl, latencyMs / 4 as q, '
         'latencyMs % 7 as m, 2 ^ 3 as p, -latencyMs + 1 as neg | filter requestId = "req-00010"',
         [row(("overhead", L - M), ("dbl", L * 2), ("q", L / 4), ("m", L % 7), ("p", 8.0), ("neg", -L + 1))])
    case("c20_comments_where_case",
         "# count throttled requests\nWHERE status = 429\n    # | filter feature = \"batch\"\n| STATS COUNT(*) AS n",
         [row(("n", sum(1 for r in R if r.get("status") == 429)))])

    # --- stats aggregates
    users = {r["userSub"] for r in R if has(r, "userSub")}
    case("c21_counts", "stats count(*) as total, count(vaultKey) as withVault, count_distinct(userSub) as users",
         [row(("total", len(R)), ("withVault", sum(1 for r in R if has(r, "vaultKey"))), ("users", len(users)))])
    # A28: events without the group-by field form one group whose key column is omitted.
    g = groups(R, lambda r: r.get("feature"))
    case("c22_sum", "stats sum(inputTokens) as inTok, sum(outputTokens) as outTok by feature",
         [row(("feature", k), ("inTok", sum(r["inputTokens"] for r in v if has(r, "inputTokens")) if any(has(r, "inputTokens") for r in v) else None),
              ("outTok", sum(r["outputTokens"] for r in v if has(r, "outputTokens")) if any(has(r, "outputTokens") for r in v) else None))
          for k, v in g.items()])
    def lat(v):
        return [r["latencyMs"] for r in v if has(r, "latencyMs")]
    g = groups(R, lambda r: r.get("model"))
    case("c23_avg_min_max", "stats avg(latencyMs) as a, min(latencyMs) as lo, max(latencyMs) as hi by model",
         [row(("model", k), ("a", avg(lat(v))), ("lo", min(lat(v), default=None)),
              ("hi", max(lat(v), default=None))) for k, v in g.items()])
    g = groups(R, lambda r: r.get("feature"))
    case("c24_pct", "stats pct(latencyMs, 50) as p50, pct(latencyMs, 90) as p90, pct(latencyMs, 99) as p99 by feature",
         [row(("feature", k), *[(n, pct(lat(v), p)) for n, p in (("p50", 50), ("p90", 90), ("p99", 99))])
          for k, v in g.items()])
    g = groups(A, lambda r: r["model"])
    case("c25_stddev", "filter @log = \"golden-path-audit\" | stats stddev(latencyMs) as sd by model",
         [row(("model", k), ("sd", stddev([r["latencyMs"] for r in v]))) for k, v in g.items()], approx=["sd"])
    g = groups(R, lambda r: r.get("userSub"))

    def with_rid(v):
        return [r for r in v if has(r, "requestId")]
    case("c26_earliest_latest", "stats earliest(requestId) as first, latest(requestId) as last by userSub",
         [row(("userSub", k), ("first", min(with_rid(v), key=lambda r: r["@timestamp"])["requestId"]),
              ("last", max(with_rid(v), key=lambda r: r["@timestamp"])["requestId"])) for k, v in g.items()])

    def sorts_first(vals):
        return sort_rows([{"v": x} for x in vals], [(lambda r: r["v"], False)])[0]["v"]

    def sorts_last(vals):
        return sort_rows([{"v": x} for x in vals], [(lambda r: r["v"], True)])[0]["v"]

    g = groups(R, lambda r: r.get("feature"))
    case("c27_sorts_first_last", "stats sortsFirst(requestId) as a, sortsLast(requestId) as b by feature",
         [row(("feature", k), ("a", sorts_first([r["requestId"] for r in with_rid(v)])),
              ("b", sorts_last([r["requestId"] for r in with_rid(v)])))
          for k, v in g.items()])

    def tok(v):
        vals = [r["inputTokens"] + r["outputTokens"] for r in v if has(r, "inputTokens", "outputTokens")]
        return (sum(vals) / 1000) if vals else None
    case("c28_expr_over_aggregates", "stats sum(inputTokens + outputTokens) / 1000 as kTok, count(*) * 2 as twice by feature",
         [row(("feature", k), ("kTok", tok(v)), ("twice", len(v) * 2)) for k, v in g.items()])

    # --- bin / time range / two stats
    day_start, day_end = (T0 + 86_400_000) // 1000, (T0 + 2 * 86_400_000) // 1000
    # A18: events exactly at start*1000 and end*1000 exist (added by the generator below).
    in_day = [r for r in R if day_start * 1000 <= r["@timestamp"] <= day_end * 1000 + 999]
    g = groups(in_day, lambda r: floor_ms(r["@timestamp"], 3_600_000))
    case("c29_bin_1h_range", "stats count(*) by bin(1h)",
         [row(("bin(1h)", Ts(k)), ("count(*)", len(v))) for k, v in g.items()], start=day_start, end=day_end)
    g = groups(R, lambda r: floor_ms(r["@timestamp"], 1_800_000))
    top5 = sorted(g.items(), key=lambda kv: -kv[0])[:5]
    case("c30_bin_alias_sort", "stats count(*) as n by bin(30m) as t | sort t desc | limit 5",
         [row(("t", Ts(k)), ("n", len(v))) for k, v in top5], ordered=True)
    g = groups(R, lambda r: r.get("userSub"))
    counts = [len(v) for v in g.values()]
    case("c31_two_stats", "stats count(*) as c by userSub | stats avg(c) as avgPerUser, max(c) as maxPerUser",
         [row(("avgPerUser", sum(counts) / len(counts)), ("maxPerUser", max(counts)))])
    last_seen = {k: max(r["@timestamp"] for r in v) for k, v in g.items()}
    g2 = groups(list(last_seen.values()), lambda t: ceil_ms(t, 86_400_000))
    case("c32_two_stats_dateceil", "stats max(@timestamp) as lastSeen by userSub | stats count(*) as users by dateceil(lastSeen, 1d) as day",
         [row(("day", Ts(k)), ("users", len(v))) for k, v in g2.items()])
    g = groups(in_day, lambda r: floor_ms(r["@timestamp"], 300_000))
    case("c33_aws_sample_latency_by_5m", "stats avg(latencyMs), max(latencyMs), min(latencyMs) by bin(5m)",
         [row(("bin(5m)", Ts(k)), ("avg(latencyMs)", avg([r["latencyMs"] for r in v if has(r, "latencyMs")])),
              ("max(latencyMs)", max([r["latencyMs"] for r in v if has(r, "latencyMs")], default=None)),
              ("min(latencyMs)", min([r["latencyMs"] for r in v if has(r, "latencyMs")], default=None)))
          for k, v in g.items()], start=day_start, end=day_end)

    # --- parse / dedup
    glob_re = re.compile(r"user=(.*?), method:(.*?), latency := (.*)", re.S)
    parsed = []
    for r in R:
        m = glob_re.search(r["@message"])
        parsed.append(m.groups() if m else (None, None, None))
    g = groups(parsed, lambda t: (t[1], t[0]))
    case("c34_aws_sample_parse_glob",
         'parse @message "user=*, method:*, latency := *" as @user, @method, @latency | stats avg(@latency) by @method, @user',
         [row(("@method", k[0]), ("@user", k[1]), ("avg(@latency)", avg([int(t[2]) for t in v if t[2] is not None]))) for k, v in g.items()])
    who = []
    for r in R:
        m = re.search(r"user=(?P<who>\S+)", r["@message"])
        if m:
            who.append(m.group("who"))
    g = groups(who, lambda w: w)
    case("c35_parse_regex", r"parse @message /user=(?<who>\S+)/ | filter ispresent(who) | stats count(*) by who",
         [row(("who", k), ("count(*)", len(v))) for k, v in g.items()])
    n = 0
    for r in R:
        m = re.search(r"latency=(.*?)ms", r["@message"], re.S)
        if m and as_number(m.group(1)) is not None and as_number(m.group(1)) > 500:
            n += 1
    case("c36_parse_default_field", "parse 'latency=*ms' as lat | filter lat > 500 | stats count(*)",
         [row(("count(*)", n))])
    seen, dd = set(), []
    for r in by_ts_desc:
        if not has(r, "userSub"):
            dd.append(r)
            continue
        if r["userSub"] in seen:
            continue
        seen.add(r["userSub"])
        dd.append(r)
    case("c37_dedup", "fields @timestamp, userSub, requestId | dedup userSub",
         [row(("@timestamp", r["@timestamp"]), ("userSub", r.get("userSub")), ("requestId", r.get("requestId"))) for r in dd],
         ordered=True)

    # --- functions
    case("c38_isempty_isblank_ispresent", "stats sum(isempty(vaultKey)) as e, sum(isblank(vaultKey)) as b, sum(ispresent(vaultKey)) as p",
         [row(("e", sum(1 for r in R if not r.get("vaultKey"))), ("b", sum(1 for r in R if not (r.get("vaultKey") or "").strip())),
              ("p", sum(1 for r in R if has(r, "vaultKey"))))])
    pick = [r for r in A if r["requestId"] in ("req-00001", "req-00002")]

    def substr(s, a, b):
        return s[a:a + b]
    case("c39_string_functions",
         'fields toupper(feature) as F, tolower("MiXeD") as lo, strlen(requestId) as n, concat(userSub, ":", feature) as uf, '
         'substr(requestId, 4, 3) as s, substr(requestId, 4) as s2, replace(requestId, "req-", "R") as r, strcontains(userAgent, "curl") as c, '
         'trim("  x  ") as t, ltrim("xxaxx", "x") as lt, rtrim("xxaxx", "x") as rt | filter requestId in ["req-00001", "req-00002"]',
         [row(("F", r["feature"].upper()), ("lo", "mixed"), ("n", len(r["requestId"])), ("uf", r["userSub"] + ":" + r["feature"]),
              ("s", substr(r["requestId"], 4, 3)), ("s2", r["requestId"][4:]), ("r", r["requestId"].replace("req-", "R")),
              ("c", 1 if "curl" in r["userAgent"] else 0), ("t", "x"), ("lt", "axx"), ("rt", "xxa")) for r in pick])
    r3 = next(r for r in A if r["requestId"] == "req-00003")
    L = r3["latencyMs"]
    case("c40_numeric_functions",
         'fields abs(0 - latencyMs) as a, ceil(latencyMs / 7) as c, floor(latencyMs / 7) as f, greatest(latencyMs, 500, 3) as g, '
         'least(latencyMs, 500) as l, log(latencyMs) as ln, sqrt(latencyMs) as sq | filter requestId = "req-00003"',
         [row(("a", L), ("c", math.ceil(L / 7)), ("f", math.floor(L / 7)), ("g", max(L, 500)), ("l", min(L, 500)),
              ("ln", math.log(L)), ("sq", math.sqrt(L)))])
    r4 = next(r for r in A if r["requestId"] == "req-00004")
    t = int(r4["@timestamp"])
    case("c41_datetime_functions",
         'fields toMillis(@timestamp) as ms, fromMillis(toMillis(@timestamp) + 1000) as next, datefloor(@timestamp, 1h) as h, '
         'dateceil(@timestamp, 1d) as d, bin(15m) as b | filter requestId = "req-00004"',
         [row(("ms", t), ("next", Ts(t + 1000)), ("h", Ts(floor_ms(t, 3_600_000))), ("d", Ts(ceil_ms(t, 86_400_000))),
              ("b", Ts(floor_ms(t, 900_000))))])
    case("c42_now", "filter now() > 1700000000 and toMillis(@timestamp) > 0 | stats count(*)",
         [row(("count(*)", len(R)))])

    def ip_facts(s):
        try:
            ip = ipaddress.ip_address(s)
        except ValueError:
            return (False, False, False, False, False, False)
        v4, v6 = ip.version == 4, ip.version == 6
        in10 = v4 and ip in ipaddress.ip_network("10.0.0.0/8")
        in192 = v4 and ip in ipaddress.ip_network("192.168.0.0/16")
        in6 = v6 and ip in ipaddress.ip_network("2001:db8::/32")
        return (True, v4, v6, in10, in192, in6)
    g = groups(A, lambda r: ip_facts(r["sourceIp"]))
    case("c43_ip_functions",
         'filter @log = "golden-path-audit" | stats count(*) as n by isValidIp(sourceIp) as v, isValidIpV4(sourceIp) as v4, '
         'isValidIpV6(sourceIp) as v6, isIpInSubnet(sourceIp, "10.0.0.0/8") as inTen, '
         'isIpv4InSubnet(sourceIp, "192.168.0.0/16") as in192, isIpv6InSubnet(sourceIp, "2001:db8::/32") as in6',
         [row(("v", k[0]), ("v4", k[1]), ("v6", k[2]), ("inTen", k[3]), ("in192", k[4]), ("in6", k[5]), ("n", len(v)))
          for k, v in g.items()])
    case("c44_coalesce", 'fields coalesce(vaultKey, "none") as vk | filter vk = "none" | stats count(*)',
         [row(("count(*)", sum(1 for r in R if not has(r, "vaultKey"))))])

    # --- fields of the JSON and the system
    g = groups([r for r in R if has(r, "client.tags.0")], lambda r: r["client.tags.0"])
    case("c45_nested_and_arrays", "filter ispresent(client.tags.0) | stats count(*), count(client.tags.1) by client.tags.0",
         [row(("client.tags.0", k), ("count(*)", len(v)), ("count(client.tags.1)", sum(1 for r in v if has(r, "client.tags.1"))))
          for k, v in g.items()])
    g = groups(R, lambda r: (r["@log"], r["@logStream"]))
    case("c46_log_and_stream", "stats count(*) by @log, @logStream",
         [row(("@log", k[0]), ("@logStream", k[1]), ("count(*)", len(v))) for k, v in g.items()])
    case("c47_ingestion_time", "filter @ingestionTime - @timestamp > 1000 | stats count(*)",
         [row(("count(*)", sum(1 for r in R if r["@ingestionTime"] - r["@timestamp"] > 1000)))])
    g = groups([r for r in R if has(r, "x-trace-id")], lambda r: r["@@source"])
    case("c48_backticks_and_at_keys", "fields `x-trace-id` as trace | filter ispresent(trace) | stats count(*) by @@source",
         [row(("@@source", k), ("count(*)", len(v))) for k, v in g.items()])
    g = groups([r for r in R if has(r, "policies.0")], lambda r: r["policies.0"])
    case("c49_audit_policies_array", "stats count(*) by policies.0",
         [row(("policies.0", k), ("count(*)", len(v))) for k, v in g.items()] +
         [row(("count(*)", sum(1 for r in R if not has(r, "policies.0"))))])
    g = groups([r for r in R if has(r, "stream")], lambda r: r["stream"])
    case("c50_boolean_field", "filter ispresent(stream) | stats count(*) by stream",
         [row(("stream", k), ("count(*)", len(v))) for k, v in g.items()])

    # --- AWS documentation samples that apply to JSON logs
    exc = [r for r in R if re.search(r"Exception", r["@message"])]
    g = groups(exc, lambda r: floor_ms(r["@timestamp"], 3_600_000))
    case("c51_aws_sample_exceptions", "filter @message like /Exception/ | stats count(*) as exceptionCount by bin(1h) | sort exceptionCount desc",
         [row(("bin(1h)", Ts(k)), ("exceptionCount", len(v))) for k, v in g.items()])
    errs = sorted([r for r in R if "ERROR" in r["@message"]], key=lambda r: -r["@timestamp"])[:20]
    case("c52_aws_sample_errors", "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 20",
         [row(("@timestamp", r["@timestamp"]), ("@message", r["@message"])) for r in errs], ordered=True)
    g = groups(R, lambda r: r.get("userSub"))
    case("c53_aws_sample_top_talkers", "stats count(*) as numRequests by userSub | sort numRequests desc",
         [row(("userSub", k), ("numRequests", len(v))) for k, v in g.items()])
    g = groups(R, lambda r: (r.get("feature"), r.get("model"), r.get("status")))
    case("c54_aws_sample_group_by_three", "stats count(*) by feature, model, status",
         [row(("feature", k[0]), ("model", k[1]), ("status", k[2]), ("count(*)", len(v))) for k, v in g.items()])
    case("c55_aws_sample_ci_regex", "filter @message like /(?i)(error|exception)/ | stats count(*) as n",
         [row(("n", sum(1 for r in R if re.search(r"(?i)(error|exception)", r["@message"]))))])
    return cases


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    audit, cw, records = generate()
    # A18: events exactly at the bounds of the day range used by c29/c33.
    day_start, day_end = (T0 + 86_400_000) // 1000, (T0 + 2 * 86_400_000) // 1000
    for ts, rid in ((day_start * 1000, "edge-start"), (day_end * 1000, "edge-end"), (day_end * 1000 + 1000, "edge-after")):
        line_obj = {"timestamp": ts, "message": json.dumps({"requestId": rid, "latencyMs": 1}), "ingestionTime": ts}
        cw.append(json.dumps(line_obj, separators=(",", ":")))
        rec = {"@timestamp": Ts(ts), "@message": line_obj["message"], "@log": CW_DEFAULT_GROUP,
               "@logStream": CW_DEFAULT_STREAM, "@ingestionTime": Ts(ts), "requestId": rid, "latencyMs": 1}
        records.append(rec)
    with open(os.path.join(out, "audit.jsonl"), "w") as f:
        f.write("\n".join(audit) + "\n")
    with open(os.path.join(out, "cloudwatch.jsonl"), "w") as f:
        f.write("\n".join(cw) + "\n")
    cases = build_cases(records)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print("%d audit events, %d CloudWatch events, %d cases" % (len(audit), len(cw), len(cases)))


if __name__ == "__main__":
    main()
