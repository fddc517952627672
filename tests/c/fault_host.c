/*
 * A host process of the C ABI for the crash scenarios of tests/faults_sink.rs: it is killed
 * with -9 and started again on the same spool. Run as
 *
 *   fault_host 'INFLUXDB_URL=...;PERFSINK_SPOOL_DIR=...;...' SYNCED
 *
 * registers series `crash`, submits points 0..SYNCED (value i, time T0 + i us) in batches of
 * 100, makes them durable with perfsink_sink_sync (the write-ahead spool's call; built with
 * -DPERFSINK_HAVE_SYNC when include/perfsink.h declares it, else perfsink_sink_flush with a
 * short timeout, the only call the ABI had before it), prints "synced SYNCED", then submits
 * further points (SYNCED, SYNCED+1, ...) for ever, printing "submitted N" after each batch,
 * until it is killed.
 *
 *   fault_host 'CONFIG' drain
 *
 * opens a sink (which replays the spool), flushes up to 30 s, closes and prints
 * "replayed R accepted A written W rejected X dropped D kept K".
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perfsink.h"

#define BATCH 100
#define T0 1700000000000000000

static perfsink_sink *open_sink(const char *config)
{
    perfsink_sink *sink = NULL;
    char err[512];
    perfsink_result rc = perfsink_sink_open(config, strlen(config), &sink, err, sizeof err);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "open: %s: %s\n", perfsink_result_name(rc), err);
        exit(2);
    }
    return sink;
}

static int submit_range(perfsink_sink *sink, uint32_t series, int64_t from, int64_t to)
{
    perfsink_point points[BATCH];
    char err[512];
    size_t accepted = 0;
    int64_t i;
    perfsink_result rc;
    for (i = from; i < to; i++) {
        perfsink_point *p = &points[i - from];
        memset(p, 0, sizeof *p);
        p->series = series;
        p->value = (double)i;
        p->timestamp_ns = T0 + i * 1000;
    }
    rc = perfsink_sink_submit(sink, points, (size_t)(to - from), &accepted, err, sizeof err);
    if (rc != PERFSINK_OK || accepted != (size_t)(to - from)) {
        fprintf(stderr, "submit %" PRId64 "..%" PRId64 ": %s (%zu taken): %s\n", from, to,
                perfsink_result_name(rc), accepted, err);
        return 1;
    }
    return 0;
}

static int drain(const char *config)
{
    perfsink_sink *sink = open_sink(config);
    perfsink_close_report r;
    char err[512];
    perfsink_result rc = perfsink_sink_flush(sink, 30000, err, sizeof err);
    if (rc != PERFSINK_OK)
        fprintf(stderr, "flush: %s: %s\n", perfsink_result_name(rc), err);
    memset(&r, 0, sizeof r);
    perfsink_sink_close(sink, &r, sizeof r, err, sizeof err);
    printf("replayed %" PRIu64 " accepted %" PRIu64 " written %" PRIu64 " rejected %" PRIu64
           " dropped %" PRIu64 " kept %" PRIu64 "\n",
           r.stats.replayed, r.stats.accepted, r.stats.written, r.stats.rejected,
           r.stats.dropped, r.kept_in_spool);
    perfsink_sink_free(sink);
    return 0;
}

int main(int argc, char **argv)
{
    perfsink_sink *sink;
    uint32_t series;
    int64_t synced, next;
    char err[512];
    perfsink_result rc;
    struct timespec pause = {0, 5 * 1000 * 1000};

    if (argc != 3) {
        fprintf(stderr, "usage: fault_host CONFIG SYNCED|drain\n");
        return 2;
    }
    if (strcmp(argv[2], "drain") == 0)
        return drain(argv[1]);
    synced = strtoll(argv[2], NULL, 10);
    sink = open_sink(argv[1]);
    rc = perfsink_sink_register_series(sink, "crash", 5, NULL, 0, NULL, 0, &series, err,
                                       sizeof err);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "register: %s: %s\n", perfsink_result_name(rc), err);
        return 1;
    }
    for (next = 0; next < synced; next += BATCH) {
        int64_t to = next + BATCH < synced ? next + BATCH : synced;
        if (submit_range(sink, series, next, to))
            return 1;
    }
#ifdef PERFSINK_HAVE_SYNC
    rc = perfsink_sink_sync(sink, 30000, err, sizeof err);
    if (rc != PERFSINK_OK) {
        fprintf(stderr, "sync: %s: %s\n", perfsink_result_name(rc), err);
        return 1;
    }
#else
    /* No durable point in the ABI yet: the most a host could do was flush. */
    rc = perfsink_sink_flush(sink, 500, err, sizeof err);
    fprintf(stderr, "no perfsink_sink_sync in this ABI; flush: %s\n", perfsink_result_name(rc));
#endif
    printf("synced %" PRId64 "\n", synced);
    fflush(stdout);
    for (next = synced;; next += BATCH) {
        if (submit_range(sink, series, next, next + BATCH))
            return 1;
        printf("submitted %" PRId64 "\n", next + BATCH);
        fflush(stdout);
        nanosleep(&pause, NULL);
    }
}
