/* A C11 host of intercore: opens the board the command line names, echoes every message
 * size from 1 byte to the link's maximum payload through the firmware's echo service
 * (each echo compared byte for byte), then runs CRC32C jobs on the zero-copy data plane
 * (each buffer's CRC computed here and compared with the one the firmware wrote after
 * it), closes everything and checks no handle is left. Exits 0 only if all of it held.
 *
 *   host_check BOARD.toml
 *
 * Built and run by scripts/test-c-host.sh (against the shared and the static library,
 * under valgrind, on the simulated SoC and on QEMU's Cortex-R5F). */
#include <intercore_host.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 10000u
#define JOBS 12

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: written here, not
 * taken from the library, so the check does not trust the code it checks. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

#define CHECK(call)                                                                    \
    do {                                                                               \
        int32_t rc_ = (call);                                                          \
        if (rc_ != INTERCORE_HOST_OK) {                                                \
            fprintf(stderr, "host_check: %s: %s: %s (%s)\n", board_path, #call,       \
                    intercore_host_status_str(rc_), intercore_host_last_error());      \
            goto fail;                                                                 \
        }                                                                              \
    } while (0)

#define FAIL(...)                                                                      \
    do {                                                                               \
        fprintf(stderr, "host_check: %s: ", board_path);                              \
        fprintf(stderr, __VA_ARGS__);                                                  \
        fputc('\n', stderr);                                                           \
        goto fail;                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    /* The simulated SoC's remote core is this program, started again. */
    int remote = intercore_host_sim_remote_main(argc, (const char *const *)argv);
    if (remote >= 0)
        return remote;
    if (argc != 2) {
        fprintf(stderr, "usage: %s BOARD.toml\n", argv[0]);
        return 2;
    }
    const char *board_path = argv[1];
    intercore_board *board = NULL;
    intercore_endpoint *ep = NULL;
    intercore_buf *bufs[2] = {NULL, NULL};
    uint8_t *msg = NULL, *back = NULL;
    size_t max = 0;
    int verified_jobs = 0;

    CHECK(intercore_board_open(board_path, &board));
    CHECK(intercore_board_max_payload(board, &max));
    CHECK(intercore_endpoint_connect(board, "rpmsg-raw", TIMEOUT_MS, &ep));
    msg = malloc(max);
    back = malloc(max);
    if (!msg || !back)
        FAIL("out of memory");

    /* Messages: every size, each echo verified. */
    for (size_t len = 1; len <= max; len++) {
        size_t got = 0;
        for (size_t i = 0; i < len; i++)
            msg[i] = (uint8_t)(i * 7u + len);
        memset(back, 0, max);
        CHECK(intercore_endpoint_send(ep, msg, len, TIMEOUT_MS));
        CHECK(intercore_endpoint_recv(ep, back, max, &got, TIMEOUT_MS));
        if (got != len || memcmp(msg, back, len) != 0)
            FAIL("size %zu: the echo differs (%zu bytes back)", len, got);
    }

    /* The data plane: two buffers in flight per round, filled in place. */
    CHECK(intercore_host_dp_open(board, TIMEOUT_MS));
    for (int round = 0; round < JOBS / 2; round++) {
        size_t lens[2];
        uint32_t want[2];
        for (int k = 0; k < 2; k++) {
            uint8_t *data = NULL;
            size_t cap = 0;
            lens[k] = 1000u + (size_t)(round * 2 + k) * 700u;
            CHECK(intercore_host_dp_alloc(board, lens[k] + 4, &bufs[k]));
            CHECK(intercore_buf_data(bufs[k], &data, &cap));
            if (cap < lens[k] + 4)
                FAIL("buffer of %zu bytes for %zu", cap, lens[k] + 4);
            for (size_t i = 0; i < lens[k]; i++)
                data[i] = (uint8_t)((i * 3u) ^ (size_t)(round * 2 + k));
            want[k] = crc32c(data, lens[k]);
            intercore_buf *b = bufs[k];
            bufs[k] = NULL; /* consumed by the submit, whatever its result */
            CHECK(intercore_host_dp_submit(b, lens[k], INTERCORE_HOST_DP_OP_CRC32C));
        }
        for (int k = 0; k < 2; k++) {
            const uint8_t *data = NULL;
            uint8_t *view = NULL;
            size_t n = 0;
            uint32_t status = 0;
            CHECK(intercore_host_dp_wait(board, TIMEOUT_MS, &bufs[k]));
            CHECK(intercore_buf_status(bufs[k], &status));
            CHECK(intercore_buf_data(bufs[k], &view, &n));
            data = view;
            if (status != INTERCORE_HOST_DP_OK)
                FAIL("job %d: status %u", round * 2 + k, status);
            /* Completions come back in submission order on one channel. */
            if (n < lens[k] + 4)
                FAIL("job %d: %zu bytes back", round * 2 + k, n);
            uint32_t got = (uint32_t)data[lens[k]] | (uint32_t)data[lens[k] + 1] << 8 |
                           (uint32_t)data[lens[k] + 2] << 16 | (uint32_t)data[lens[k] + 3] << 24;
            if (got != want[k])
                FAIL("job %d: CRC32C %08x, computed here %08x", round * 2 + k, got, want[k]);
            CHECK(intercore_buf_free(bufs[k]));
            bufs[k] = NULL;
            verified_jobs++;
        }
    }

    CHECK(intercore_endpoint_close(ep));
    ep = NULL;
    intercore_board *b = board;
    board = NULL;
    CHECK(intercore_board_close(b, 10000));
    if (intercore_host_live_handles() != 0)
        FAIL("%zu handles left after closing the board", intercore_host_live_handles());
    printf("host_check (C11): %s: %zu message sizes echoed and verified, %d CRC32C buffers "
           "verified\n",
           board_path, max, verified_jobs);
    free(msg);
    free(back);
    return 0;

fail:
    free(msg);
    free(back);
    if (board)
        intercore_board_close(board, 1000); /* frees the endpoint and buffers too */
    return 1;
}
