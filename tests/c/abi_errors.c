/*
 * Misuse of the C ABI returns the documented code, never crashes, and leaves a useful (and
 * secret-free) message in the call's own error buffer. Run by tests/c_abi.rs:
 *
 *   abi_errors 'INFLUXDB_URL=http://127.0.0.1:PORT;INFLUXDB_DB=db;...'
 *
 * The configuration names a live InfluxDB (a disabled sink takes everything without looking at
 * it). The only points that reach it are the 4 valid ones in measurement abi_errors_ok.
 * Exit status 0 when every check passed; each failed check is printed.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "perfsink.h"

#define SECRET "hunter2-s3cr3t"

static int checks;
static int failures;

#define CHECK(cond) check((cond), #cond, __LINE__)
#define CHECK_RC(call, want) check_rc((call), (want), #call, __LINE__)

static void check(int ok, const char *what, int line)
{
    checks++;
    if (!ok) {
        fprintf(stderr, "abi_errors.c:%d: check failed: %s\n", line, what);
        failures++;
    }
}

/* The error buffer of every call: `E` passes it. */
static char err[512];
#define E err, sizeof err

static void check_rc(perfsink_result got, perfsink_result want, const char *call, int line)
{
    checks++;
    if (got != want) {
        fprintf(stderr, "abi_errors.c:%d: %s returned %s, want %s (error: %s)\n", line, call,
                perfsink_result_name(got), perfsink_result_name(want), err);
        failures++;
    }
}

/* Checks that the last call's message contains `part` (or, with want == 0, does not). */
#define CHECK_MSG(part) check_msg((part), 1, __LINE__)
#define CHECK_MSG_LACKS(part) check_msg((part), 0, __LINE__)

static void check_msg(const char *part, int want, int line)
{
    checks++;
    if ((strstr(err, part) != NULL) != want) {
        fprintf(stderr, "abi_errors.c:%d: the error %s \"%s\": %s\n", line,
                want ? "lacks" : "contains", part, err);
        failures++;
    }
}

#define S(literal) literal, sizeof(literal) - 1

static perfsink_tag tag(const char *key, const char *value)
{
    perfsink_tag t;
    t.key = key;
    t.key_len = strlen(key);
    t.value = value;
    t.value_len = strlen(value);
    return t;
}

static perfsink_field field(const char *key, perfsink_field_type kind)
{
    perfsink_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.key_len = strlen(key);
    f.kind = kind;
    return f;
}

static perfsink_field float_field(const char *key, double value)
{
    perfsink_field f = field(key, PERFSINK_FIELD_FLOAT);
    f.float_value = value;
    return f;
}

static perfsink_point point(uint32_t series, double value, int64_t ts)
{
    perfsink_point p;
    memset(&p, 0, sizeof p);
    p.series = series;
    p.value = value;
    p.timestamp_ns = ts;
    return p;
}

static perfsink_stats stats_of(const perfsink_sink *sink)
{
    perfsink_stats s;
    memset(&s, 0, sizeof s);
    CHECK_RC(perfsink_sink_stats(sink, &s, sizeof s, E), PERFSINK_OK);
    return s;
}

static void names_and_version(void)
{
    static const struct {
        perfsink_result code;
        const char *name;
    } codes[] = {
        {PERFSINK_OK, "PERFSINK_OK"},
        {PERFSINK_NULL_PARAMETER, "PERFSINK_NULL_PARAMETER"},
        {PERFSINK_INVALID_UTF8, "PERFSINK_INVALID_UTF8"},
        {PERFSINK_INVALID_ARGUMENT, "PERFSINK_INVALID_ARGUMENT"},
        {PERFSINK_PANIC, "PERFSINK_PANIC"},
        {PERFSINK_CONFIG, "PERFSINK_CONFIG"},
        {PERFSINK_INVALID_INPUT, "PERFSINK_INVALID_INPUT"},
        {PERFSINK_INVALID_VALUE, "PERFSINK_INVALID_VALUE"},
        {PERFSINK_UNKNOWN_SERIES, "PERFSINK_UNKNOWN_SERIES"},
        {PERFSINK_SERIES_LIMIT, "PERFSINK_SERIES_LIMIT"},
        {PERFSINK_QUEUE_FULL, "PERFSINK_QUEUE_FULL"},
        {PERFSINK_TIMEOUT, "PERFSINK_TIMEOUT"},
        {PERFSINK_CLOSED, "PERFSINK_CLOSED"},
        {PERFSINK_UNDELIVERED, "PERFSINK_UNDELIVERED"},
        {PERFSINK_AUTH, "PERFSINK_AUTH"},
        {PERFSINK_IO, "PERFSINK_IO"},
    };
    size_t i;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(perfsink_result_name(codes[i].code), codes[i].name) == 0);
    }
    CHECK(PERFSINK_OK == 0);
    CHECK(strcmp(perfsink_result_name(9999), "PERFSINK_UNKNOWN") == 0);
    CHECK(strcmp(perfsink_result_name(5), "PERFSINK_UNKNOWN") == 0);
    CHECK(strcmp(perfsink_result_name(0xFFFFFFFFu), "PERFSINK_UNKNOWN") == 0);
    CHECK(strcmp(perfsink_version(), PERFSINK_VERSION) == 0);
    CHECK(PERFSINK_UNDELIVERED == 303);
    CHECK(perfsink_abi_version() >> 16 == PERFSINK_ABI_VERSION_MAJOR);
    CHECK((perfsink_abi_version() & 0xFFFF) == PERFSINK_ABI_VERSION_MINOR);
    CHECK(perfsink_abi_version() == 0x10004); /* 1.4 */
}

static void open_misuse(void)
{
    perfsink_sink *sink = NULL;

    CHECK_RC(perfsink_sink_open(S(""), NULL, E), PERFSINK_NULL_PARAMETER);
    CHECK_MSG("out");
    CHECK_RC(perfsink_sink_open(NULL, 3, &sink, E), PERFSINK_NULL_PARAMETER);
    CHECK_MSG("config is NULL but its length is 3");
    CHECK(sink == NULL); /* outputs are written only on success */
    CHECK_RC(perfsink_sink_open_env(NULL, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_open(S("INFLUXDB_DB=\xff\xfe"), &sink, E), PERFSINK_INVALID_UTF8);
    CHECK_MSG("config is not valid UTF-8 (at byte 12)");
    CHECK(sink == NULL);

    /* NULL with length 0 is the empty configuration: a disabled sink that takes everything. */
    CHECK_RC(perfsink_sink_open(NULL, 0, &sink, E), PERFSINK_OK);
    CHECK(sink != NULL);
    if (sink != NULL) {
        perfsink_field f = float_field("v", 1.0);
        CHECK_RC(perfsink_sink_record(sink, S("m"), NULL, 0, &f, 1, PERFSINK_TIMESTAMP_NOW, E),
                 PERFSINK_OK);
        CHECK_RC(perfsink_sink_flush(sink, 0, E), PERFSINK_OK);
        CHECK_RC(perfsink_sink_sync(sink, 0, E), PERFSINK_OK);
        CHECK_RC(perfsink_sink_close(sink, NULL, 0, E), PERFSINK_OK);
        perfsink_sink_free(sink);
    }
}

static void config_errors(void)
{
    perfsink_sink *sink = NULL;

    CHECK_RC(perfsink_sink_open(S("INFLUXDB_URL=http://127.0.0.1:1;PERFSINK_BATCH_LINEZ=10"),
                                &sink, E),
             PERFSINK_CONFIG);
    CHECK_MSG("unknown key PERFSINK_BATCH_LINEZ");
    CHECK_MSG("did you mean PERFSINK_BATCH_LINES");
    CHECK(sink == NULL);
    CHECK_RC(perfsink_sink_open(S("PERFSINK_FLUSH_INTERVAL_MS=soon"), &sink, E), PERFSINK_CONFIG);
    CHECK_MSG("PERFSINK_FLUSH_INTERVAL_MS");
    CHECK_MSG("\"soon\""); /* values of keys that are not secrets are quoted */
    CHECK_RC(perfsink_sink_open(S("influxdb_url=http://127.0.0.1:1"), &sink, E), PERFSINK_CONFIG);
    CHECK_MSG("case-sensitive");
    CHECK_RC(perfsink_sink_open(S("INFLUXDB_URL"), &sink, E), PERFSINK_CONFIG);
    CHECK_MSG("no '='");
    CHECK(sink == NULL);
}

static void secrets_stay_secret(void)
{
    static const struct {
        const char *config;
        const char *names; /* what the message must name instead */
    } cases[] = {
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD=" SECRET
         ";PERFSINK_BATCH_LINES=lots",
         "PERFSINK_BATCH_LINES"},
        {"INFLUXDB_PASSWORD=" SECRET ";INFLUXDB_USERNAME=admin;INFLUXDB_URL=ftp://127.0.0.1:1",
         "INFLUXDB_URL"},
        {"INFLUXDB_URL=http://admin:" SECRET "@127.0.0.1:1", "INFLUXDB_URL"},
        {"INFLUXDB_URL=http://127.0.0.1:1/db?u=admin&p=" SECRET, "INFLUXDB_URL"},
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_PASSWORD:" SECRET, "entry 2"},
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD=" SECRET
         "\x01",
         "INFLUXDB_PASSWORD"},
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_PASSWORD=" SECRET, "INFLUXDB_USERNAME"},
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_TOKEN=" SECRET ";INFLUXDB_USERNAME=admin",
         "INFLUXDB_TOKEN"},
        /* An unescaped ';' in a password splits it: the rest is an entry without '='. */
        {"INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD=hunter2;"
         "s3cr3t",
         "entry 4"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        perfsink_sink *sink = NULL;
        perfsink_result rc = perfsink_sink_open(cases[i].config, strlen(cases[i].config), &sink, E);
        checks++;
        if (rc != PERFSINK_CONFIG) {
            fprintf(stderr, "abi_errors.c: secret case %zu returned %s, want PERFSINK_CONFIG\n", i,
                    perfsink_result_name(rc));
            failures++;
            perfsink_sink_close(sink, NULL, 0, E);
            continue;
        }
        CHECK_MSG(cases[i].names);
        CHECK_MSG_LACKS(SECRET);
        CHECK_MSG_LACKS("s3cr3t");
    }
}

/* The per-call buffer: filled on failure (NUL-terminated, truncated at a character boundary,
 * never written past err_len), cleared on success, optional. */
static void error_buffer(void)
{
    static const char msg[] = "sink is NULL";
    const size_t len = sizeof msg - 1;
    char buf[64];
    perfsink_sink *sink = NULL;
    const char *at;

    CHECK_RC(perfsink_sink_flush(NULL, 0, NULL, 0), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_flush(NULL, 0, NULL, 100), PERFSINK_NULL_PARAMETER);

    memset(buf, 'X', sizeof buf);
    CHECK_RC(perfsink_sink_flush(NULL, 0, buf, sizeof buf), PERFSINK_NULL_PARAMETER);
    CHECK(strcmp(buf, msg) == 0);

    memset(buf, 'X', sizeof buf);
    CHECK_RC(perfsink_sink_flush(NULL, 0, buf, 5), PERFSINK_NULL_PARAMETER);
    CHECK(strcmp(buf, "sink") == 0);
    CHECK(buf[5] == 'X'); /* nothing written past err_len */

    memset(buf, 'X', sizeof buf);
    CHECK_RC(perfsink_sink_flush(NULL, 0, buf, len), PERFSINK_NULL_PARAMETER);
    CHECK(strncmp(buf, msg, len - 1) == 0 && buf[len - 1] == '\0' && buf[len] == 'X');

    memset(buf, 'X', sizeof buf);
    CHECK_RC(perfsink_sink_flush(NULL, 0, buf, 1), PERFSINK_NULL_PARAMETER);
    CHECK(buf[0] == '\0' && buf[1] == 'X');

    memset(buf, 'X', sizeof buf);
    CHECK_RC(perfsink_sink_flush(NULL, 0, buf, 0), PERFSINK_NULL_PARAMETER);
    CHECK(buf[0] == 'X');

    /* Success clears the buffer: a stale message is never read as this call's. */
    CHECK_RC(perfsink_sink_open(NULL, 0, &sink, buf, sizeof buf), PERFSINK_OK);
    CHECK(buf[0] == '\0');
    perfsink_sink_free(sink);
    sink = NULL;

    /* Truncation never splits a UTF-8 character: the message names the key PERFSINK_GRÖSSE. */
    CHECK_RC(perfsink_sink_open(S("PERFSINK_GR\xc3\x96SSE=1"), &sink, E), PERFSINK_CONFIG);
    CHECK(sink == NULL);
    at = strstr(err, "\xc3\x96");
    CHECK(at != NULL);
    if (at != NULL) {
        size_t n = (size_t)(at - err);
        CHECK(n + 3 <= sizeof buf);
        /* Room for `n` bytes and the first byte of Ö: the copy stops before Ö. */
        memset(buf, 'X', sizeof buf);
        CHECK_RC(perfsink_sink_open(S("PERFSINK_GR\xc3\x96SSE=1"), &sink, buf, n + 2),
                 PERFSINK_CONFIG);
        CHECK(strlen(buf) == n && strncmp(buf, err, n) == 0);
        /* Room for the whole of Ö. */
        CHECK_RC(perfsink_sink_open(S("PERFSINK_GR\xc3\x96SSE=1"), &sink, buf, n + 3),
                 PERFSINK_CONFIG);
        CHECK(strlen(buf) == n + 2 && strncmp(buf, err, n + 2) == 0);
    }
}

/* Every entry point with a NULL (or NULL-with-length) argument. */
static void null_arguments(perfsink_sink *sink)
{
    perfsink_tag tags[1];
    perfsink_field fields[1];
    perfsink_point points[1];
    perfsink_stats st;
    uint32_t series = 777;
    size_t accepted = 777;
    char buf[16];
    bool enabled;

    tags[0] = tag("k", "v");
    fields[0] = float_field("v", 1.0);
    points[0] = point(0, 1.0, 1);

    CHECK_RC(perfsink_sink_register_series(NULL, S("m"), tags, 1, NULL, 0, &series, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("sink is NULL");
    CHECK_RC(perfsink_sink_register_series(sink, S("m"), tags, 1, NULL, 0, NULL, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("out_series");
    CHECK_RC(perfsink_sink_register_series(sink, NULL, 4, tags, 1, NULL, 0, &series, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("measurement");
    CHECK_RC(perfsink_sink_register_series(sink, S("m"), NULL, 2, NULL, 0, &series, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("tags");
    CHECK_RC(perfsink_sink_register_series(sink, S("m"), tags, 1, NULL, 5, &series, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("value_field");
    tags[0].key = NULL;
    CHECK_RC(perfsink_sink_register_series(sink, S("m"), tags, 1, NULL, 0, &series, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("tag key");
    tags[0] = tag("k", "v");
    CHECK(series == 777);

    CHECK_RC(perfsink_sink_set_series_kind(NULL, 0, PERFSINK_METRIC_RATE, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_set_series_kind(sink, 0, 4, E), PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("perfsink_metric_kind");
    CHECK_RC(perfsink_sink_set_series_kind(sink, 4000000, PERFSINK_METRIC_RATE, E),
             PERFSINK_UNKNOWN_SERIES);

    CHECK_RC(perfsink_sink_record(NULL, S("m"), tags, 1, fields, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_record(sink, NULL, 1, tags, 1, fields, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_record(sink, S("m"), NULL, 1, fields, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, NULL, 2, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("fields is NULL but its length is 2");
    fields[0].key = NULL;
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    fields[0] = field("s", PERFSINK_FIELD_STRING);
    fields[0].string_len = 2;
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("string field value");

    CHECK_RC(perfsink_sink_submit(NULL, points, 1, &accepted, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_submit(sink, NULL, 3, &accepted, E), PERFSINK_NULL_PARAMETER);
    CHECK_MSG("points is NULL but its length is 3");
    CHECK(accepted == 777);
    CHECK_RC(perfsink_sink_submit(sink, NULL, 0, &accepted, E), PERFSINK_OK);
    CHECK(accepted == 0);
    CHECK_RC(perfsink_sink_submit(sink, NULL, 0, NULL, E), PERFSINK_OK);

    CHECK_RC(perfsink_sink_flush(NULL, 1000, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_sync(NULL, 1000, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_stats(NULL, &st, sizeof st, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_stats(sink, NULL, sizeof st, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_enabled(NULL, &enabled, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_enabled(sink, NULL, E), PERFSINK_NULL_PARAMETER);
    CHECK(perfsink_sink_last_write_error(NULL, buf, sizeof buf) == 0);
    CHECK(perfsink_sink_last_write_error(sink, NULL, 0) == 0); /* no write failed */
}

/* Points that cannot be written are refused with their own code and counted. */
static void invalid_points(perfsink_sink *sink)
{
    perfsink_tag tags[1];
    perfsink_field fields[2];
    perfsink_point points[4];
    perfsink_stats before = stats_of(sink), after;
    uint64_t refused = 0; /* points offered to the sink and refused by it */
    uint32_t series = 0, again = 1;
    size_t accepted = 777;
    const int64_t t0 = 1700000000000000000;

    tags[0] = tag("case", "fast");
    CHECK_RC(perfsink_sink_register_series(sink, S("abi_errors_ok"), tags, 1, NULL, 0, &series, E),
             PERFSINK_OK);
    CHECK_RC(perfsink_sink_register_series(sink, S("abi_errors_ok"), tags, 1, NULL, 0, &again, E),
             PERFSINK_OK);
    CHECK(series == again);
    CHECK_RC(perfsink_sink_register_series(sink, S("\xff\xfe"), tags, 1, NULL, 0, &again, E),
             PERFSINK_INVALID_UTF8);

    /* The convenience path. */
    fields[0] = float_field("duration", 0.5);
    CHECK_RC(perfsink_sink_record(sink, S("\xff\xfe"), tags, 1, fields, 1, t0, E),
             PERFSINK_INVALID_UTF8);
    CHECK_MSG("measurement is not valid UTF-8 (at byte 0)");
    refused++; /* a point that cannot be read is counted like an invalid one */
    tags[0] = tag("case", "\xc3");
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, t0, E), PERFSINK_INVALID_UTF8);
    CHECK_MSG("tag value");
    refused++;
    tags[0] = tag("case", "record");
    fields[0].kind = 77;
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, t0, E),
             PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("\"duration\" has unknown type 77");
    refused++;
    fields[0] = float_field("duration", NAN);
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, t0, E), PERFSINK_INVALID_VALUE);
    refused++;
    fields[0] = float_field("duration", -HUGE_VAL);
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 1, t0, E), PERFSINK_INVALID_VALUE);
    refused++;
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, NULL, 0, t0, E), PERFSINK_INVALID_INPUT);
    refused++;
    fields[0] = float_field("duration", 0.5);
    CHECK_RC(perfsink_sink_record(sink, S(""), tags, 1, fields, 1, t0, E), PERFSINK_INVALID_INPUT);
    refused++;
    fields[1] = field("count", PERFSINK_FIELD_UINT);
    fields[1].uint_value = UINT64_MAX; /* InfluxDB 1.x has no unsigned integers */
    CHECK_RC(perfsink_sink_record(sink, S("m"), tags, 1, fields, 2, t0, E), PERFSINK_INVALID_VALUE);
    refused++;
    CHECK_RC(perfsink_sink_record(sink, S("abi_errors_ok"), tags, 1, fields, 1, t0, E), PERFSINK_OK);

    /* The fast path. */
    points[0] = point(99999, 1.0, t0);
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_UNKNOWN_SERIES);
    CHECK_MSG("unknown series id 99999");
    CHECK(accepted == 0);
    refused++;
    points[0] = point(series, NAN, t0);
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_VALUE);
    refused++;
    /* One bad point does not stop the others; the code is that of the first refusal. */
    points[0] = point(series, 1.0, t0 + 1);
    points[1] = point(424242, 2.0, t0 + 2);
    points[2] = point(series, HUGE_VAL, t0 + 3);
    points[3] = point(series, 4.0, t0 + 4);
    CHECK_RC(perfsink_sink_submit(sink, points, 4, &accepted, E), PERFSINK_UNKNOWN_SERIES);
    CHECK_MSG("2 of 4 points not taken");
    CHECK(accepted == 2);
    refused += 2;
    /* Extra fields of a fast-path point are checked like those of perfsink_sink_record. */
    points[0] = point(series, 1.0, t0 + 5);
    fields[0] = float_field("extra", 1.0);
    fields[0].kind = 77;
    points[0].fields = fields;
    points[0].field_count = 1;
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("unknown type 77");
    refused++;
    points[0].fields = NULL;
    points[0].field_count = 2;
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_NULL_PARAMETER);
    CHECK_MSG("fields is NULL but its length is 2");
    refused++;
    fields[0] = field("\xff", PERFSINK_FIELD_INT);
    points[0].fields = fields;
    points[0].field_count = 1;
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_UTF8);
    refused++;
    fields[0] = float_field("extra", NAN);
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_VALUE);
    refused++;
    CHECK(accepted == 0);

    CHECK_RC(perfsink_sink_flush(sink, 30000, E), PERFSINK_OK);
    after = stats_of(sink);
    CHECK(after.rejected_invalid - before.rejected_invalid == refused);
    CHECK(after.accepted - before.accepted == 3);
    CHECK(after.written - before.written == 3);
    if (after.rejected_invalid - before.rejected_invalid != refused) {
        fprintf(stderr, "abi_errors.c: rejected_invalid grew by %" PRIu64 ", want %" PRIu64 "\n",
                after.rejected_invalid - before.rejected_invalid, refused);
    }
}

/* A field key given twice in one point (the series' value field counts) is refused and
 * counted; PERFSINK_TIMESTAMP_NOW works in submit as in record. */
static void repeated_keys_and_now(perfsink_sink *sink)
{
    perfsink_tag tags[1];
    perfsink_field fields[2];
    perfsink_point points[1];
    perfsink_stats before = stats_of(sink), after;
    uint32_t series = 0;
    size_t accepted = 777;

    tags[0] = tag("case", "fast");
    CHECK_RC(perfsink_sink_register_series(sink, S("abi_errors_ok"), tags, 1, NULL, 0, &series, E),
             PERFSINK_OK);
    fields[0] = float_field("duration", 0.5);
    fields[1] = float_field("duration", 0.7);
    CHECK_RC(perfsink_sink_record(sink, S("abi_errors_ok"), tags, 1, fields, 2,
                                  PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_INVALID_INPUT);
    CHECK_MSG("\"duration\" is used twice");
    fields[1] = float_field("value", 1.0); /* the series' value field */
    points[0] = point(series, 1.0, PERFSINK_TIMESTAMP_NOW);
    points[0].fields = &fields[1];
    points[0].field_count = 1;
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_INPUT);
    CHECK_MSG("\"value\" is used twice");
    CHECK(accepted == 0);
    points[0].fields = fields;
    points[0].field_count = 2; /* "duration" and "value" */
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_INVALID_INPUT);
    points[0].fields = NULL;
    points[0].field_count = 0;
    CHECK_RC(perfsink_sink_submit(sink, points, 1, &accepted, E), PERFSINK_OK);
    CHECK(accepted == 1 && err[0] == '\0');
    CHECK_RC(perfsink_sink_flush(sink, 30000, E), PERFSINK_OK);
    after = stats_of(sink);
    CHECK(after.rejected_invalid - before.rejected_invalid == 3);
    CHECK(after.written - before.written == 1);
}

/* perfsink_stats is versioned by its size: too small is refused, bytes past what this
 * library knows are left alone. */
static void stats_sizes(perfsink_sink *sink)
{
    union {
        perfsink_stats st;
        unsigned char bytes[sizeof(perfsink_stats) + 16];
    } big;
    perfsink_stats st;
    bool enabled = false;
    size_t i;

    /* The 1.0 struct (20 counters) is the smallest accepted; 1.1 appended three. */
    CHECK_RC(perfsink_sink_stats(sink, &st, 20 * 8 - 1, E), PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("sizeof");
    CHECK_RC(perfsink_sink_stats(sink, &st, 20 * 8, E), PERFSINK_OK);
    CHECK(sizeof st == 23 * 8);
    CHECK_RC(perfsink_sink_stats(sink, &st, 0, E), PERFSINK_INVALID_ARGUMENT);
    memset(&big, 0xAB, sizeof big);
    CHECK_RC(perfsink_sink_stats(sink, &big.st, sizeof big, E), PERFSINK_OK);
    CHECK(big.st.series >= 1 && big.st.series < 100);
    for (i = sizeof(perfsink_stats); i < sizeof big; i++) {
        CHECK(big.bytes[i] == 0xAB);
    }
    CHECK_RC(perfsink_sink_enabled(sink, &enabled, E), PERFSINK_OK);
    CHECK(enabled);
}

/* Close is idempotent, reports, and every later call but close, free and
 * perfsink_sink_last_write_error gets PERFSINK_CLOSED; free releases the handle. */
static void close_twice_and_call_after(perfsink_sink *sink)
{
    perfsink_close_report report, again;
    perfsink_field f = float_field("v", 1.0);
    perfsink_point p = point(0, 1.0, 1);
    perfsink_stats st;
    uint32_t series;
    bool enabled;
    char buf[16];

    memset(&report, 0xFF, sizeof report);
    CHECK_RC(perfsink_sink_close(sink, &report, sizeof report, E), PERFSINK_OK);
    CHECK(report.stats.written == 4 && report.stats.dropped == 0 && report.stats.queue_depth == 0);
    CHECK(report.delivered == 1 && report.kept_in_spool == 0 && report.has_last_write_error == 0);
    memset(&again, 0, sizeof again);
    CHECK_RC(perfsink_sink_close(sink, &again, sizeof again, E), PERFSINK_OK);
    CHECK(memcmp(&report, &again, sizeof report) == 0);
    CHECK_RC(perfsink_sink_close(sink, &again, sizeof again - 8 * 19, E),
             PERFSINK_INVALID_ARGUMENT);
    CHECK_RC(perfsink_sink_close(sink, NULL, 0, NULL, 0), PERFSINK_OK);

    CHECK_RC(perfsink_sink_submit(sink, &p, 1, NULL, E), PERFSINK_CLOSED);
    CHECK_MSG("closed");
    CHECK_RC(perfsink_sink_record(sink, S("m"), NULL, 0, &f, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_register_series(sink, S("m"), NULL, 0, NULL, 0, &series, E),
             PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_flush(sink, 0, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_sync(sink, 0, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_set_series_kind(sink, 0, PERFSINK_METRIC_GAUGE, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_stats(sink, &st, sizeof st, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_sink_enabled(sink, &enabled, E), PERFSINK_CLOSED);
    CHECK(perfsink_sink_last_write_error(sink, buf, sizeof buf) == 0);
    perfsink_sink_free(sink);
    perfsink_sink_free(NULL);
}

/* A sink whose InfluxDB never answers: close gives up after PERFSINK_CLOSE_TIMEOUT_MS, says
 * so with PERFSINK_UNDELIVERED, and the write error stays readable after close. The timeout
 * leaves the writer time for a refused connection even under valgrind on a loaded machine. */
static void close_undelivered(void)
{
    static const char config[] = "INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_VERSION=1;PERFSINK_CLOSE_TIMEOUT_MS=2000;"
                                 "PERFSINK_CREATE_DATABASE=false;PERFSINK_SELF_METRICS_INTERVAL_MS=0";
    perfsink_sink *sink = NULL;
    perfsink_close_report report;
    perfsink_field f = float_field("v", 1.0);
    char buf[256];

    CHECK_RC(perfsink_sink_open(config, sizeof config - 1, &sink, E), PERFSINK_OK);
    if (sink == NULL) {
        return;
    }
    CHECK_RC(perfsink_sink_record(sink, S("m"), NULL, 0, &f, 1, PERFSINK_TIMESTAMP_NOW, E),
             PERFSINK_OK);
    memset(&report, 0, sizeof report);
    CHECK_RC(perfsink_sink_close(sink, &report, sizeof report, E), PERFSINK_UNDELIVERED);
    CHECK_MSG("1 accepted points were not delivered");
    CHECK(report.delivered == 0 && report.stats.dropped_undelivered == 1);
    CHECK(report.stats.written == 0 && report.has_last_write_error == 1);
    CHECK(perfsink_sink_last_write_error(sink, buf, sizeof buf) > 0);
    CHECK(strstr(buf, "127.0.0.1:1") != NULL || strstr(buf, "connect") != NULL);
    CHECK_RC(perfsink_sink_close(sink, NULL, 0, E), PERFSINK_UNDELIVERED); /* the same status */
    perfsink_sink_free(sink);
}

/* With a spool, sync returns once the points are appended to it, InfluxDB or not; close keeps
 * them there (PERFSINK_UNDELIVERED: not delivered, but not lost either). */
static void sync_into_the_spool(void)
{
    char dir[] = "/tmp/perfsink-abi-spool-XXXXXX";
    char config[512];
    perfsink_sink *sink = NULL;
    perfsink_close_report report;
    perfsink_field f = float_field("v", 1.0);

    if (mkdtemp(dir) == NULL) {
        CHECK(0);
        return;
    }
    snprintf(config, sizeof config,
             "INFLUXDB_URL=http://127.0.0.1:1;INFLUXDB_VERSION=1;PERFSINK_CLOSE_TIMEOUT_MS=200;"
             "PERFSINK_CREATE_DATABASE=false;PERFSINK_SELF_METRICS_INTERVAL_MS=0;"
             "PERFSINK_SPOOL_FSYNC=always;PERFSINK_SPOOL_DIR=%s", dir);
    CHECK_RC(perfsink_sink_open(config, strlen(config), &sink, E), PERFSINK_OK);
    if (sink == NULL) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        CHECK_RC(perfsink_sink_record(sink, S("m"), NULL, 0, &f, 1, 1000 + i, E), PERFSINK_OK);
    }
    CHECK_RC(perfsink_sink_sync(sink, 10000, E), PERFSINK_OK);
    CHECK_RC(perfsink_sink_sync(sink, 0, E), PERFSINK_OK); /* nothing new: at once */
    memset(&report, 0, sizeof report);
    CHECK_RC(perfsink_sink_close(sink, &report, sizeof report, E), PERFSINK_UNDELIVERED);
    CHECK(report.kept_in_spool == 3 && report.stats.spooled == 3);
    CHECK(report.stats.dropped == 0 && report.stats.written == 0);
    perfsink_sink_free(sink);
    /* The directory holds its lock and the one segment with the three points, nothing else. */
    const char *names[] = {"lock", "0000000000000000.wal"};
    for (size_t i = 0; i < 2; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        CHECK(remove(path) == 0);
    }
    CHECK(rmdir(dir) == 0);
}

struct log_seen {
    int messages;
    uint32_t level;
    char first[256];
};

static void on_log(void *userdata, uint32_t level, const char *msg, size_t len)
{
    struct log_seen *seen = userdata;
    if (seen->messages++ == 0) {
        seen->level = level;
        snprintf(seen->first, sizeof seen->first, "%.*s", (int)len, msg);
    }
}

/* The log goes to the host's callback (with its userdata), or nowhere when off. */
static void log_callback(void)
{
    struct log_seen seen;
    perfsink_sink *sink = NULL;

    memset(&seen, 0, sizeof seen);
    perfsink_log_set(on_log, &seen, PERFSINK_LOG_INFO);
    CHECK_RC(perfsink_sink_open(S("PERFSINK_BATCH_LINES=10"), &sink, E), PERFSINK_OK);
    perfsink_sink_free(sink);
    CHECK(seen.messages == 1 && seen.level == PERFSINK_LOG_WARN);
    CHECK(strstr(seen.first, "INFLUXDB_URL is not set") != NULL);
    perfsink_log_set(on_log, &seen, PERFSINK_LOG_OFF);
    CHECK_RC(perfsink_sink_open(S("PERFSINK_BATCH_LINES=10"), &sink, E), PERFSINK_OK);
    perfsink_sink_free(sink);
    CHECK(seen.messages == 1);
    perfsink_log_set(NULL, NULL, PERFSINK_LOG_WARN); /* back to the default: stderr */
}

/* The JMeter listener's exports (ABI 1.2): NULLs, bad parameters naming the parameter,
 * records out of the string arena or not UTF-8, describe's truncation, close twice and
 * calls after close. The listener writes to a closed port, so nothing reaches InfluxDB and
 * close reports its lines (the `started`/`ended` annotations, the intervals) undelivered. */
static void jmeter_misuse(void)
{
    perfsink_jmeter *j = NULL;
    perfsink_tag bad[2];
    perfsink_tag params[7];
    perfsink_jmeter_sample rec;
    perfsink_close_report report;
    char small[8];
    const char strings[] = "home page200OKThread 1\xff";
    size_t n;

    CHECK(sizeof(perfsink_jmeter_sample) == 104);
    CHECK_RC(perfsink_jmeter_open(NULL, 1, &j, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_jmeter_open(NULL, 0, NULL, E), PERFSINK_NULL_PARAMETER);
    bad[0] = tag("summaryOnly", "yes");
    CHECK_RC(perfsink_jmeter_open(bad, 1, &j, E), PERFSINK_CONFIG);
    CHECK_MSG("summaryOnly");
    CHECK(j == NULL);
    bad[0] = tag("influxdbUrl", "http://127.0.0.1:1/query?db=x&p=" SECRET);
    bad[1] = tag("influxdbToken", SECRET);
    CHECK_RC(perfsink_jmeter_open(bad, 2, &j, E), PERFSINK_CONFIG);
    CHECK_MSG("influxdbUrl");
    CHECK_MSG_LACKS(SECRET);
    bad[0] = tag("PERFSINK_NO_SUCH_KEY", "1");
    CHECK_RC(perfsink_jmeter_open(bad, 1, &j, E), PERFSINK_CONFIG);
    CHECK_MSG("PERFSINK_NO_SUCH_KEY");
    bad[0] = tag("application", "\xff");
    CHECK_RC(perfsink_jmeter_open(bad, 1, &j, E), PERFSINK_INVALID_UTF8);

    params[0] = tag("influxdbUrl", "http://127.0.0.1:1/write?db=jm");
    params[1] = tag("INFLUXDB_VERSION", "1");
    params[2] = tag("PERFSINK_CREATE_DATABASE", "false");
    params[3] = tag("PERFSINK_SELF_METRICS_INTERVAL_MS", "0");
    params[4] = tag("PERFSINK_CLOSE_TIMEOUT_MS", "200");
    params[5] = tag("PERFSINK_CONNECT_TIMEOUT_MS", "100");
    params[6] = tag("application", "abi");
    CHECK_RC(perfsink_jmeter_open(params, 7, &j, E), PERFSINK_OK);
    if (j == NULL)
        return;

    memset(&rec, 0, sizeof rec);
    rec.timestamp_ms = 1700000000000;
    rec.elapsed_ms = 12;
    rec.label_len = 9;
    rec.code_off = 9;
    rec.code_len = 3;
    rec.message_off = 12;
    rec.message_len = 2;
    rec.thread_off = 14;
    rec.thread_len = 8;
    rec.flags = PERFSINK_JMETER_SUCCESS;
    CHECK_RC(perfsink_jmeter_submit(NULL, &rec, 1, strings, 22, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_jmeter_submit(j, NULL, 1, strings, 22, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 1, NULL, 22, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 0, NULL, 0, E), PERFSINK_OK);
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 1, strings, 22, E), PERFSINK_OK);
    rec.thread_len = 9; /* beyond the arena */
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 1, strings, 22, E), PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("samples[0].thread");
    rec.thread_off = 0xFFFFFFFFu; /* offset + length past u32: no overflow */
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 1, strings, 22, E), PERFSINK_INVALID_ARGUMENT);
    rec.thread_off = 14;
    rec.thread_len = 9; /* includes the 0xFF byte */
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 1, strings, 23, E), PERFSINK_INVALID_UTF8);
    CHECK_MSG("samples[0].thread");
    CHECK_RC(perfsink_jmeter_threads(NULL, 1, 0, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_jmeter_threads(j, 4, 1, E), PERFSINK_OK);

    CHECK(perfsink_jmeter_describe(NULL, small, sizeof small) == 0);
    n = perfsink_jmeter_describe(j, small, sizeof small);
    CHECK(n > sizeof small && strlen(small) == sizeof small - 1);
    CHECK(perfsink_jmeter_describe(j, NULL, 0) == n);

    CHECK_RC(perfsink_jmeter_close(j, &report, 8, E), PERFSINK_INVALID_ARGUMENT);
    CHECK_RC(perfsink_jmeter_close(j, &report, sizeof report, E), PERFSINK_UNDELIVERED);
    CHECK(report.delivered == 0 && report.stats.accepted > 0);
    CHECK_RC(perfsink_jmeter_close(j, &report, sizeof report, E), PERFSINK_UNDELIVERED);
    CHECK_RC(perfsink_jmeter_submit(j, &rec, 0, NULL, 0, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_jmeter_threads(j, 4, 4, E), PERFSINK_CLOSED);
    CHECK_RC(perfsink_jmeter_close(NULL, NULL, 0, E), PERFSINK_OK);
    perfsink_jmeter_free(j);
    perfsink_jmeter_free(NULL);
}

/* ABI 1.3: perfsink_sink_open_env_with and perfsink_workflow_steps, misused. Writes nothing. */
static void workflow_misuse(void)
{
    static const char arena[] = "wfstepkey";
    perfsink_sink *sink = NULL;
    perfsink_workflow_step step;
    perfsink_workflow_tag tag;
    size_t accepted = 99;

    memset(&step, 0, sizeof step);
    memset(&tag, 0, sizeof tag);
    CHECK(sizeof step == 64 && sizeof tag == 16);
    step.end_ns = PERFSINK_TIMESTAMP_NOW;
    step.duration_s = 0.5;
    step.workflow_len = 2;
    step.step_off = 2;
    step.step_len = 4;
    step.flags = PERFSINK_WORKFLOW_SUCCESS;

    CHECK_RC(perfsink_workflow_steps(NULL, &step, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_MSG("sink is NULL");
    CHECK(accepted == 0);
    CHECK_RC(perfsink_sink_open_env_with(NULL, 4, &sink, E), PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_sink_open_env_with(S("INFLUXDB_URL=;batch_linez=3"), &sink, E),
             PERFSINK_CONFIG);
    CHECK_MSG("unknown key batch_linez");
    CHECK(sink == NULL);
    /* The environment's INFLUXDB_URL overridden by an empty one: disabled, takes everything. */
    CHECK_RC(perfsink_sink_open_env_with(S("INFLUXDB_URL=;batch_lines=3"), &sink, E), PERFSINK_OK);
    if (sink == NULL) {
        return;
    }
    CHECK_RC(perfsink_workflow_steps(sink, NULL, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 0, NULL, 9, &accepted, E),
             PERFSINK_NULL_PARAMETER);
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 1, arena, 9, &accepted, E),
             PERFSINK_NULL_PARAMETER);
    step.step_len = 100;
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("outside strings");
    CHECK(accepted == 0);
    step.step_len = 4;
    step.tag_count = 1;
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("outside tags");
    step.tag_count = 0;
    step.flags = 8;
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_INVALID_ARGUMENT);
    CHECK_MSG("unknown flags");
    step.flags = PERFSINK_WORKFLOW_SUCCESS | PERFSINK_WORKFLOW_ITERATION;
    step.duration_s = -1.0;
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, NULL, 0, arena, 9, &accepted, E),
             PERFSINK_INVALID_VALUE);
    step.duration_s = 0.0;
    tag.key_off = 6;
    tag.key_len = 3; /* "key", value empty: omitted */
    step.tag_count = 1;
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, &tag, 1, arena, 9, &accepted, E), PERFSINK_OK);
    CHECK(accepted == 1);
    CHECK_RC(perfsink_sink_close(sink, NULL, 0, E), PERFSINK_OK);
    CHECK_RC(perfsink_workflow_steps(sink, &step, 1, &tag, 1, arena, 9, &accepted, E),
             PERFSINK_CLOSED);
    CHECK(accepted == 0);
    perfsink_sink_free(sink);
}

int main(int argc, char **argv)
{
    perfsink_sink *sink = NULL;

    if (argc != 2) {
        fprintf(stderr, "usage: %s 'INFLUXDB_URL=...;...'\n", argv[0]);
        return 2;
    }
    names_and_version();
    open_misuse();
    config_errors();
    secrets_stay_secret();
    error_buffer();
    log_callback();
    close_undelivered();
    sync_into_the_spool();
    jmeter_misuse();
    workflow_misuse();

    CHECK_RC(perfsink_sink_open(argv[1], strlen(argv[1]), &sink, E), PERFSINK_OK);
    if (sink != NULL) {
        null_arguments(sink);
        invalid_points(sink);
        repeated_keys_and_now(sink);
        stats_sizes(sink);
        close_twice_and_call_after(sink);
    }
    CHECK_RC(perfsink_sink_close(NULL, NULL, 0, E), PERFSINK_OK);
    CHECK_RC(perfsink_sink_close(NULL, NULL, 0, NULL, 0), PERFSINK_OK);

    printf("abi_errors: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
