/*
 * Closing a handle while other threads still use it (a JMeter teardown racing a sampler, a
 * JNA Cleaner, Python's __del__): THREADS pthreads submit batches, register series, record
 * and read stats through one handle while the main thread closes it. Every call returns OK or
 * PERFSINK_CLOSED — never anything else, never a crash (run under valgrind and ASan by
 * tests/c_abi.rs) — and once a thread saw CLOSED every later call of it does too. Then a
 * second close returns the same report, and the handle is freed when every thread is done.
 *
 *   close_race 'INFLUXDB_URL=http://127.0.0.1:PORT;INFLUXDB_DB=db;...'
 *
 * Prints "close_race: accepted A, written W, dropped D, calls after close C"; exit status 0
 * when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "perfsink.h"

#define THREADS 7
#define BATCH 50
#define T0 1700000000000000000

struct worker {
    const perfsink_sink *sink;
    int index;
    uint64_t accepted;     /* points the sink took from this thread */
    uint64_t after_closed; /* calls made after this thread first saw PERFSINK_CLOSED */
    int failed;
};

/* A call's outcome: OK and CLOSED are the only answers; CLOSED is final. */
static int outcome(struct worker *w, perfsink_result rc, int *closed, const char *what,
                   const char *msg)
{
    if (rc == PERFSINK_CLOSED) {
        if (*closed) {
            w->after_closed++;
        }
        *closed = 1;
        return 1;
    }
    if (rc != PERFSINK_OK || *closed) {
        fprintf(stderr, "thread %d: %s returned %s%s: %s\n", w->index, what,
                perfsink_result_name(rc), *closed ? " after CLOSED" : "", msg);
        w->failed = 1;
    }
    return 0;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    perfsink_point points[BATCH];
    perfsink_tag tag;
    perfsink_field field;
    perfsink_stats st;
    char msg[256];
    uint32_t series = 0;
    size_t accepted;
    int closed = 0, round, i;
    int64_t k = 0;

    tag.key = "thread";
    tag.key_len = 6;
    tag.value = "race";
    tag.value_len = 4;
    memset(&field, 0, sizeof field);
    field.key = "n";
    field.key_len = 1;
    field.kind = PERFSINK_FIELD_INT;
    /* Keep calling until CLOSED was seen, then a few more rounds. */
    for (round = 0; w->after_closed < 20 && round < 1000000; round++) {
        perfsink_result rc = perfsink_sink_register_series(w->sink, "c_race", 6, &tag, 1, NULL, 0,
                                                           &series, msg, sizeof msg);
        if (outcome(w, rc, &closed, "register", msg)) {
            continue;
        }
        for (i = 0; i < BATCH; i++, k++) {
            memset(&points[i], 0, sizeof points[i]);
            points[i].series = series;
            points[i].value = 1.0;
            points[i].timestamp_ns = T0 + (k * THREADS + w->index) * 1000;
        }
        accepted = 0;
        rc = perfsink_sink_submit(w->sink, points, BATCH, &accepted, msg, sizeof msg);
        w->accepted += accepted;
        if (outcome(w, rc, &closed, "submit", msg)) {
            continue;
        }
        field.int_value = k;
        rc = perfsink_sink_record(w->sink, "c_race_record", 13, &tag, 1, &field, 1,
                                  PERFSINK_TIMESTAMP_NOW, msg, sizeof msg);
        w->accepted += rc == PERFSINK_OK;
        if (outcome(w, rc, &closed, "record", msg)) {
            continue;
        }
        rc = perfsink_sink_stats(w->sink, &st, sizeof st, msg, sizeof msg);
        outcome(w, rc, &closed, "stats", msg);
    }
    if (!closed) {
        fprintf(stderr, "thread %d never saw PERFSINK_CLOSED\n", w->index);
        w->failed = 1;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    perfsink_sink *sink = NULL;
    perfsink_close_report report, again;
    perfsink_stats st;
    perfsink_result rc;
    char msg[256];
    uint64_t accepted = 0, after = 0;
    int i, bad = 0;
    const struct timespec pause = {0, 200 * 1000 * 1000};

    if (argc != 2) {
        fprintf(stderr, "usage: %s 'INFLUXDB_URL=...;...'\n", argv[0]);
        return 2;
    }
    rc = perfsink_sink_open(argv[1], strlen(argv[1]), &sink, msg, sizeof msg);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "open: %s: %s\n", perfsink_result_name(rc), msg);
        return 1;
    }
    for (i = 0; i < THREADS; i++) {
        memset(&workers[i], 0, sizeof workers[i]);
        workers[i].sink = sink;
        workers[i].index = i;
        if (pthread_create(&threads[i], NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    /* Let them run, then close under their feet. */
    nanosleep(&pause, NULL);
    rc = perfsink_sink_close(sink, &report, sizeof report, msg, sizeof msg);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "close: %s: %s\n", perfsink_result_name(rc), msg);
        bad = 1;
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        bad |= workers[i].failed;
        accepted += workers[i].accepted;
        after += workers[i].after_closed;
    }
    /* Every point a thread was told was taken is in the final report, written. */
    if (report.stats.accepted != accepted || report.stats.written != accepted ||
        report.stats.dropped != 0 || report.delivered != 1 || accepted == 0) {
        fprintf(stderr,
                "close_race: threads were told %" PRIu64 " points were taken; the report says "
                "accepted %" PRIu64 ", written %" PRIu64 ", dropped %" PRIu64 "\n",
                accepted, report.stats.accepted, report.stats.written, report.stats.dropped);
        bad = 1;
    }
    /* A second close gives the same report; other calls are refused. */
    rc = perfsink_sink_close(sink, &again, sizeof again, msg, sizeof msg);
    if (rc != PERFSINK_OK || memcmp(&report, &again, sizeof report) != 0) {
        fprintf(stderr, "second close: %s, report %s\n", perfsink_result_name(rc),
                memcmp(&report, &again, sizeof report) == 0 ? "same" : "differs");
        bad = 1;
    }
    if (perfsink_sink_stats(sink, &st, sizeof st, NULL, 0) != PERFSINK_CLOSED) {
        fprintf(stderr, "stats after close is not PERFSINK_CLOSED\n");
        bad = 1;
    }
    perfsink_sink_free(sink);
    printf("close_race: accepted %" PRIu64 ", written %" PRIu64 ", dropped %" PRIu64
           ", calls after close %" PRIu64 "\n",
           report.stats.accepted, report.stats.written, report.stats.dropped, after);
    return bad ? 1 : 0;
}
