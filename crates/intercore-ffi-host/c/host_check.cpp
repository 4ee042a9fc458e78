// A C++17 host of intercore, the same checks as host_check.c written the C++ way: the
// handles owned by RAII wrappers (unique_ptr with the library's close functions), failures
// as exceptions carrying the library's message. Opens the board the command line names,
// echoes every message size up to the maximum payload (each echo compared), runs CRC32C
// jobs on the zero-copy data plane (each CRC computed here), closes, and checks no handle
// is left.
//
//   host_check_cpp BOARD.toml
#include <intercore_host.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kTimeoutMs = 10000;

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(int32_t rc, const char *what)
{
    if (rc != INTERCORE_HOST_OK)
        throw Error(std::string(what) + ": " + intercore_host_status_str(rc) + " (" +
                    intercore_host_last_error() + ")");
}

// CRC32C with a table built at compile time: not the library's code.
constexpr std::array<uint32_t, 256> crc_table()
{
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto kCrc = crc_table();

uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = kCrc[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return ~c;
}

struct BoardClose {
    void operator()(intercore_board *b) const { intercore_board_close(b, 10000); }
};
struct EndpointClose {
    void operator()(intercore_endpoint *e) const { intercore_endpoint_close(e); }
};
struct BufFree {
    void operator()(intercore_buf *b) const { intercore_buf_free(b); }
};
using Board = std::unique_ptr<intercore_board, BoardClose>;
using Endpoint = std::unique_ptr<intercore_endpoint, EndpointClose>;
using Buf = std::unique_ptr<intercore_buf, BufFree>;

Board open_board(const char *path)
{
    intercore_board *b = nullptr;
    check(intercore_board_open(path, &b), "intercore_board_open");
    return Board(b);
}

std::pair<size_t, int> run(const char *path)
{
    Board board = open_board(path);
    size_t max = 0;
    check(intercore_board_max_payload(board.get(), &max), "intercore_board_max_payload");
    intercore_endpoint *raw = nullptr;
    check(intercore_endpoint_connect(board.get(), "rpmsg-raw", kTimeoutMs, &raw),
          "intercore_endpoint_connect");
    Endpoint ep(raw);

    std::vector<uint8_t> msg(max), back(max);
    for (size_t len = 1; len <= max; len++) {
        for (size_t i = 0; i < len; i++)
            msg[i] = static_cast<uint8_t>(i * 31u + len);
        size_t got = 0;
        check(intercore_endpoint_send(ep.get(), msg.data(), len, kTimeoutMs), "send");
        check(intercore_endpoint_recv(ep.get(), back.data(), back.size(), &got, kTimeoutMs),
              "recv");
        if (got != len || !std::equal(msg.begin(), msg.begin() + static_cast<long>(len),
                                      back.begin()))
            throw Error("size " + std::to_string(len) + ": the echo differs");
    }

    check(intercore_host_dp_open(board.get(), kTimeoutMs), "intercore_host_dp_open");
    int jobs = 0;
    for (int job = 0; job < 10; job++) {
        const size_t len = 512u + static_cast<size_t>(job) * 1111u;
        intercore_buf *b = nullptr;
        check(intercore_host_dp_alloc(board.get(), len + 4, &b), "intercore_host_dp_alloc");
        Buf buf(b);
        uint8_t *data = nullptr;
        size_t cap = 0;
        check(intercore_buf_data(buf.get(), &data, &cap), "intercore_buf_data");
        for (size_t i = 0; i < len; i++)
            data[i] = static_cast<uint8_t>(i ^ (i >> 8) ^ static_cast<size_t>(job));
        const uint32_t want = crc32c(data, len);
        // The submit consumes the handle: release it from its owner first.
        check(intercore_host_dp_submit(buf.release(), len, INTERCORE_HOST_DP_OP_CRC32C),
              "submit");
        intercore_buf *c = nullptr;
        check(intercore_host_dp_wait(board.get(), kTimeoutMs, &c),
              "intercore_host_dp_wait");
        Buf done(c);
        uint32_t status = 0;
        size_t n = 0;
        check(intercore_buf_status(done.get(), &status), "intercore_buf_status");
        check(intercore_buf_data(done.get(), &data, &n), "intercore_buf_data");
        if (status != INTERCORE_HOST_DP_OK || n < len + 4)
            throw Error("job " + std::to_string(job) + ": status " + std::to_string(status));
        const uint32_t got = uint32_t{data[len]} | uint32_t{data[len + 1]} << 8 |
                             uint32_t{data[len + 2]} << 16 | uint32_t{data[len + 3]} << 24;
        if (got != want)
            throw Error("job " + std::to_string(job) + ": wrong CRC32C");
        jobs++;
    }

    check(intercore_endpoint_close(ep.release()), "intercore_endpoint_close");
    check(intercore_board_close(board.release(), 10000), "intercore_board_close");
    if (intercore_host_live_handles() != 0)
        throw Error("handles left after closing the board");
    return {max, jobs};
}

} // namespace

int main(int argc, char **argv)
{
    const int remote = intercore_host_sim_remote_main(argc, argv);
    if (remote >= 0)
        return remote;
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s BOARD.toml\n", argv[0]);
        return 2;
    }
    try {
        const auto [sizes, jobs] = run(argv[1]);
        std::printf("host_check (C++17): %s: %zu message sizes echoed and verified, %d CRC32C "
                    "buffers verified\n",
                    argv[1], sizes, jobs);
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "host_check_cpp: %s: %s\n", argv[1], e.what());
        return 1;
    }
}
