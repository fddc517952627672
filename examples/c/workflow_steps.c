/*
 * workflow_steps.c: record the steps of a scripted workflow in InfluxDB through perfsink.
 *
 * It writes the schema of the Python workflow steps (docs/ARCHITECTURE.md), one point per step:
 *
 *   workflow_step,action=api_call,status=success,step=login,workflow=checkout
 *       duration=0.231,success_count=1i,iteration=7i
 *
 * with the convenience call perfsink_sink_record(), then shows the fast path once: register a
 * series, then submit an array of perfsink_point (measurement workflow_poll).
 *
 * Build, from the repository root (after `cargo build --release`):
 *   shared library:
 *     cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/workflow_steps.c \
 *        -Ltarget/release -lperfsink -Wl,-rpath,"$PWD/target/release" -o workflow_steps
 *   static library:
 *     cc -std=c99 -O2 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/workflow_steps.c \
 *        target/release/libperfsink.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
 *        -o workflow_steps
 *
 * Run: workflow_steps [CONFIG [STEPS]], CONFIG a KEY=value;... string, absent or "-" for the
 * INFLUXDB_* and PERFSINK_* environment variables; STEPS defaults to 2000.
 *   ./workflow_steps 'INFLUXDB_URL=http://127.0.0.1:8086;INFLUXDB_DB=demo' 2000
 *   INFLUXDB_URL=http://127.0.0.1:8086 INFLUXDB_DB=demo ./workflow_steps - 500
 *
 * Exit status: 0 when every call succeeded and every point was written, 1 otherwise (2 for
 * bad arguments).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perfsink.h"

#define DEFAULT_STEPS 2000
#define FAST_POINTS 100
#define FLUSH_TIMEOUT_MS 30000 /* generous: a busy machine, a slow network, valgrind */

/* Every fallible call takes a buffer for its own error message; `ERR` passes this one. The
 * example is single-threaded; a threaded program gives each call (or thread) its own. */
static char err[512];
#define ERR err, sizeof err

/* Prints why a call failed: the result's name and the call's message. */
static int failed(perfsink_result rc, const char *what)
{
    if (rc == PERFSINK_OK) {
        return 0;
    }
    fprintf(stderr, "workflow_steps: %s failed: %s: %s\n", what, perfsink_result_name(rc), err);
    return 1;
}

/* perfsink takes strings as (pointer, length); these helpers fill the structs from C strings. */
static perfsink_tag tag(const char *key, const char *value)
{
    perfsink_tag t;
    t.key = key;
    t.key_len = strlen(key);
    t.value = value;
    t.value_len = strlen(value);
    return t;
}

static perfsink_field float_field(const char *key, double value)
{
    perfsink_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.key_len = strlen(key);
    f.kind = PERFSINK_FIELD_FLOAT;
    f.float_value = value;
    return f;
}

static perfsink_field int_field(const char *key, int64_t value)
{
    perfsink_field f;
    memset(&f, 0, sizeof f);
    f.key = key;
    f.key_len = strlen(key);
    f.kind = PERFSINK_FIELD_INT;
    f.int_value = value;
    return f;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A small deterministic pseudo-random generator (so runs are reproducible): [0, 1). */
static double next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (double)(*state >> 11) / 9007199254740992.0; /* 2^53 */
}

/* Records `n` workflow steps with the convenience call, one point per call. */
static int record_steps(const perfsink_sink *sink, long n)
{
    static const char *const workflows[] = {"checkout", "search"};
    static const char *const steps[] = {"login", "browse", "add_to_cart", "pay"};
    static const char *const measurement = "workflow_step";
    uint64_t rng = 42;
    long i;

    for (i = 0; i < n; i++) {
        const char *workflow = workflows[i % 2];
        const char *step = steps[(i / 2) % 4];
        int success = next_random(&rng) >= 0.1; /* about one step in ten fails */
        double duration = 0.05 + 0.45 * next_random(&rng); /* seconds */
        perfsink_tag tags[4];
        perfsink_field fields[3];
        perfsink_result rc;

        tags[0] = tag("workflow", workflow);
        tags[1] = tag("step", step);
        tags[2] = tag("status", success ? "success" : "failure");
        tags[3] = tag("action", "api_call");
        fields[0] = float_field("duration", duration);
        fields[1] = int_field("success_count", success ? 1 : 0);
        fields[2] = int_field("iteration", i / 8); /* an iteration: 4 steps x 2 workflows */

        rc = perfsink_sink_record(sink, measurement, strlen(measurement), tags, 4, fields, 3,
                                  PERFSINK_TIMESTAMP_NOW, ERR);
        if (failed(rc, "perfsink_sink_record")) {
            return 1;
        }
    }
    return 0;
}

/* The fast path: register a series once, then submit many points of it in one call. */
static int submit_fast_path(const perfsink_sink *sink)
{
    static const char *const measurement = "workflow_poll";
    static const char *const value_field = "duration";
    perfsink_tag tags[2];
    perfsink_field iterations[FAST_POINTS];
    perfsink_point points[FAST_POINTS];
    uint32_t series;
    size_t accepted = 0;
    int64_t start = now_ns();
    perfsink_result rc;
    int i;

    tags[0] = tag("workflow", "checkout");
    tags[1] = tag("step", "poll_status");
    rc = perfsink_sink_register_series(sink, measurement, strlen(measurement), tags, 2,
                                       value_field, strlen(value_field), &series, ERR);
    if (failed(rc, "perfsink_sink_register_series")) {
        return 1;
    }
    for (i = 0; i < FAST_POINTS; i++) {
        iterations[i] = int_field("iteration", i);
        points[i].series = series;
        points[i].value = 0.001 * (i + 1); /* written as the field "duration" */
        points[i].field_count = 1;
        points[i].fields = &iterations[i];
        points[i].timestamp_ns = start + (int64_t)i * 1000000; /* 1 ms apart */
    }
    rc = perfsink_sink_submit(sink, points, FAST_POINTS, &accepted, ERR);
    if (failed(rc, "perfsink_sink_submit")) {
        return 1;
    }
    printf("fast path: %zu of %d points accepted\n", accepted, FAST_POINTS);
    return 0;
}

static void print_stats(const char *when, const perfsink_stats *s)
{
    printf("%s: accepted %" PRIu64 ", written %" PRIu64 ", rejected %" PRIu64 ", dropped %" PRIu64
           ", queue depth %" PRIu64 ", series %" PRIu64 ", requests %" PRIu64 "\n",
           when, s->accepted, s->written, s->rejected, s->dropped, s->queue_depth, s->series,
           s->requests);
}

int main(int argc, char **argv)
{
    perfsink_sink *sink = NULL;
    perfsink_stats stats;
    perfsink_close_report report;
    perfsink_result rc;
    long n = DEFAULT_STEPS;
    int bad = 0;

    if (argc > 3) {
        fprintf(stderr, "usage: %s ['KEY=value;KEY=value'|- [steps]]\n", argv[0]);
        return 2;
    }
    if (argc > 2) {
        char *end;
        n = strtol(argv[2], &end, 10);
        if (*end != '\0' || n < 0) {
            fprintf(stderr, "workflow_steps: steps must be a number >= 0, not %s\n", argv[2]);
            return 2;
        }
    }

    printf("perfsink %s\n", perfsink_version());
    /* The library's C ABI must be this header's major version, at least its minor. */
    if (perfsink_abi_version() >> 16 != PERFSINK_ABI_VERSION_MAJOR ||
        perfsink_abi_version() < ((uint32_t)PERFSINK_ABI_VERSION_MAJOR << 16 | PERFSINK_ABI_VERSION_MINOR)) {
        fprintf(stderr, "workflow_steps: libperfsink has C ABI %u.%u, this program needs %d.%d\n",
                (unsigned)(perfsink_abi_version() >> 16),
                (unsigned)(perfsink_abi_version() & 0xFFFF), PERFSINK_ABI_VERSION_MAJOR,
                PERFSINK_ABI_VERSION_MINOR);
        return 1;
    }
    if (argc > 1 && strcmp(argv[1], "-") != 0) {
        rc = perfsink_sink_open(argv[1], strlen(argv[1]), &sink, ERR);
    } else {
        rc = perfsink_sink_open_env(&sink, ERR); /* INFLUXDB_* and PERFSINK_* variables */
    }
    if (failed(rc, "perfsink_sink_open")) {
        return 1;
    }

    bad = record_steps(sink, n) || submit_fast_path(sink);

    /* Wait until InfluxDB confirmed what was sent (close would do it too). */
    if (!bad) {
        bad = failed(perfsink_sink_flush(sink, FLUSH_TIMEOUT_MS, ERR), "perfsink_sink_flush");
    }
    if (failed(perfsink_sink_stats(sink, &stats, sizeof stats, ERR), "perfsink_sink_stats")) {
        bad = 1;
    } else {
        print_stats("after flush", &stats);
    }

    /* Close always, even after an error: it delivers what is left and says whether everything
     * was delivered (PERFSINK_UNDELIVERED otherwise); then free the handle. */
    rc = perfsink_sink_close(sink, &report, sizeof report, ERR);
    perfsink_sink_free(sink);
    sink = NULL;
    print_stats("closed", &report.stats);
    if (failed(rc, "perfsink_sink_close")) {
        return 1;
    }
    stats = report.stats;
    if (stats.rejected != 0 || stats.dropped != 0 || stats.queue_depth != 0) {
        fprintf(stderr, "workflow_steps: not every point was written\n");
        bad = 1;
    }
    return bad ? 1 : 0;
}
