/*
 * OpenAMP test apps for Linux userspace (scripts/test-real-peers.sh), with our own
 * platform layer for OpenAMP's Linux "generic" machine as openamp-system-reference lays it
 * out (examples/legacy_apps/system/linux/machine/generic/platform_info.c, rsc_table.c):
 *
 *   - POSIX shared-memory object /dev/shm/openamp.shm, 0x80000 bytes, offset = physical
 *     address; the resource table at 0 (one vdev: id 7, VIRTIO_RPMSG_F_NS, vrings at 0x4000
 *     and 0x8000, 256 entries, align 0x1000, notify ids 1 and 2); the host's buffer pool at
 *     0x10000, 0x40000 bytes;
 *   - the doorbell is one byte over a UNIX stream socket /tmp/openamp.event.0 whatever the
 *     vring; the remote is the server ("unixs:") and writes the table before it accepts,
 *     the host is the client ("unix:") and retries until the server is there.
 *
 *   openamp-app remote [COUNT]   as rpmsg-echo: VIRTIO_DEV_DEVICE, creates the endpoint
 *                                "rpmsg-openamp-demo-channel" (announced by OpenAMP's name
 *                                service) and echoes COUNT messages from its callback.
 *   openamp-app host [SWEEPS]    as rpmsg-echo-ping: VIRTIO_DEV_DRIVER with a shared buffer
 *                                pool, creates the endpoint of the same name, which OpenAMP
 *                                binds when the remote's announcement arrives, then sends
 *                                every payload size 1..=496 SWEEPS times and checks each
 *                                echo byte for byte ("openamp host: N passed, N failed").
 *
 * Environment: OPENAMP_SHM (default /dev/shm/openamp.shm), OPENAMP_SOCKET (default
 * /tmp/openamp.event.0).
 */
#include <metal/device.h>
#include <metal/io.h>
#include <metal/sys.h>
#include <openamp/remoteproc.h>
#include <openamp/rpmsg_virtio.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SHM_SIZE 0x80000UL
#define RSC_PA 0x0UL
#define BUF_PA 0x10000UL
#define BUF_SIZE 0x40000UL
#define SERVICE "rpmsg-openamp-demo-channel"
#define PAYLOAD_MAX 496U
#define START_MS 60000
#define STEP_MS 10000

/* The generic machine's table (rsc_table.c): one vdev with two fixed vrings. */
struct table {
    struct resource_table hdr;
    uint32_t offset[1];
    struct fw_rsc_vdev vdev;
    struct fw_rsc_vdev_vring vring[2];
} __attribute__((packed));

static const struct table table_template = {
    .hdr = {.ver = 1, .num = 1},
    .offset = {offsetof(struct table, vdev)},
    .vdev = {.type = RSC_VDEV, .id = 7, .notifyid = 0, .dfeatures = 1U << VIRTIO_RPMSG_F_NS,
             .num_of_vrings = 2},
    .vring = {{.da = 0x4000, .align = 0x1000, .num = 256, .notifyid = 1},
              {.da = 0x8000, .align = 0x1000, .num = 256, .notifyid = 2}},
};

static int sock = -1;
static void *shm;
static struct metal_io_region shm_io;
static metal_phys_addr_t shm_phys = 0;
static struct remoteproc_mem shm_mem;
static struct remoteproc rproc;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *map_shm(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    void *p;
    if (fd < 0 || fstat(fd, &st) != 0 ||
        ((size_t)st.st_size < SHM_SIZE && ftruncate(fd, SHM_SIZE) != 0)) {
        fprintf(stderr, "openamp-app: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    p = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static int socket_server(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), s;
    strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
    unlink(path);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0) {
        fprintf(stderr, "openamp-app: listening on %s: %s\n", path, strerror(errno));
        return -1;
    }
    s = accept(l, NULL, NULL);
    close(l);
    return s;
}

static int socket_client(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    long end = now_ms() + START_MS;
    strncpy(a.sun_path, path, sizeof(a.sun_path) - 1);
    while (now_ms() < end) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
            return s;
        if (s >= 0)
            close(s);
        usleep(20000);
    }
    fprintf(stderr, "openamp-app: nothing listens on %s\n", path);
    return -1;
}

/* remoteproc ops, as the generic machine's linux_proc_ops. */
static struct remoteproc *op_init(struct remoteproc *r, const struct remoteproc_ops *ops, void *arg)
{
    (void)ops;
    r->priv = arg;
    return r;
}

static void op_remove(struct remoteproc *r)
{
    (void)r;
}

static void *op_mmap(struct remoteproc *r, metal_phys_addr_t *pa, metal_phys_addr_t *da, size_t size,
                     unsigned int attribute, struct metal_io_region **io)
{
    metal_phys_addr_t p = *pa;
    void *va;
    (void)attribute;
    (void)size;
    if (p == METAL_BAD_PHYS)
        p = *da;
    if (p == METAL_BAD_PHYS)
        return NULL;
    if (*da == METAL_BAD_PHYS)
        *da = p;
    *pa = p;
    va = metal_io_phys_to_virt(&shm_io, p);
    if (va) {
        if (io)
            *io = &shm_io;
        remoteproc_add_mem(r, &shm_mem);
    }
    return va;
}

/* One byte per notification, whatever the vring (linux_proc_notify). */
static int op_notify(struct remoteproc *r, uint32_t id)
{
    char one = 1;
    (void)r;
    (void)id;
    return send(sock, &one, 1, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static const struct remoteproc_ops ops = {
    .init = op_init, .remove = op_remove, .mmap = op_mmap, .notify = op_notify,
};

/* Waits up to `ms` for doorbell bytes, takes them all, and runs the virtqueues
 * (platform_poll: remoteproc_get_notification(rproc, RSC_NOTIFY_ID_ANY)). Returns -1 once
 * the peer has closed the socket. */
static int poll_once(int ms)
{
    struct pollfd p = {.fd = sock, .events = POLLIN};
    char buf[32];
    int r = poll(&p, 1, ms);
    if (r > 0) {
        ssize_t n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return -1;
    }
    remoteproc_get_notification(&rproc, RSC_NOTIFY_ID_ANY);
    return 0;
}

static struct rpmsg_endpoint ept;
static unsigned echoed;
static uint8_t reply[PAYLOAD_MAX];
static int reply_len = -1;
static uint32_t reply_src;

static int echo_cb(struct rpmsg_endpoint *e, void *data, size_t len, uint32_t src, void *priv)
{
    (void)priv;
    (void)src;
    if (rpmsg_send(e, data, (int)len) < 0) {
        fprintf(stderr, "openamp remote: rpmsg_send of echo %u failed\n", echoed);
        exit(1);
    }
    echoed++;
    return RPMSG_SUCCESS;
}

static int ping_cb(struct rpmsg_endpoint *e, void *data, size_t len, uint32_t src, void *priv)
{
    (void)e;
    (void)priv;
    reply_len = (int)(len > PAYLOAD_MAX ? PAYLOAD_MAX : len);
    reply_src = src;
    memcpy(reply, data, (size_t)reply_len);
    return RPMSG_SUCCESS;
}

static void unbind_cb(struct rpmsg_endpoint *e)
{
    (void)e;
}

static void pattern(uint8_t *p, unsigned sweep, unsigned size)
{
    for (unsigned k = 0; k < size; k++)
        p[k] = (uint8_t)((k * 31U) ^ (size * 7U) ^ (sweep * 131U));
}

int main(int argc, char **argv)
{
    struct metal_init_params mp = METAL_INIT_DEFAULTS;
    const char *shm_path = getenv("OPENAMP_SHM") ? getenv("OPENAMP_SHM") : "/dev/shm/openamp.shm";
    const char *sock_path = getenv("OPENAMP_SOCKET") ? getenv("OPENAMP_SOCKET") : "/tmp/openamp.event.0";
    static struct rpmsg_virtio_device rvdev;
    static struct rpmsg_virtio_shm_pool pool;
    struct virtio_device *vdev;
    struct rpmsg_device *rdev;
    struct metal_io_region *buf_io;
    void *rsc;
    int is_host, ret;
    unsigned n;

    if (argc < 2 || (strcmp(argv[1], "host") != 0 && strcmp(argv[1], "remote") != 0)) {
        fprintf(stderr, "usage: %s host [SWEEPS] | remote [COUNT]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    is_host = strcmp(argv[1], "host") == 0;
    n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : (is_host ? 1U : PAYLOAD_MAX);
    mp.log_level = METAL_LOG_WARNING;
    /* libmetal's Linux port probes the platform and PCI buses for uio_pdrv_genirq,
     * uio_dmem_genirq or vfio-pci (lib/system/linux/device.c, metal_linux_bus_init, which
     * runs `modprobe`) and fails with -ENODEV where none exists (a container). These apps
     * use no libmetal device and no libmetal interrupt: the common part metal_init has set
     * up by then (lists, logger) is all they need, so -ENODEV is reported and tolerated. */
    ret = metal_init(&mp);
    if (ret == -ENODEV) {
        fprintf(stderr, "openamp-app: metal_init: -ENODEV (no UIO/VFIO driver for libmetal's bus probe; "
                        "not needed here, continuing)\n");
    } else if (ret != 0) {
        fprintf(stderr, "openamp-app: metal_init: %d\n", ret);
        return 1;
    }
    shm = map_shm(shm_path);
    if (!shm)
        return 1;
    metal_io_init(&shm_io, shm, &shm_phys, SHM_SIZE, (unsigned int)-1, 0, NULL);
    remoteproc_init_mem(&shm_mem, NULL, 0, 0, SHM_SIZE, &shm_io);
    if (is_host) {
        sock = socket_client(sock_path);
    } else {
        /* platform_device_setup_resource_table: the server writes the table first. */
        memcpy((char *)shm + RSC_PA, &table_template, sizeof(table_template));
        sock = socket_server(sock_path);
    }
    if (sock < 0)
        return 1;
    if (!remoteproc_init(&rproc, &ops, NULL)) {
        fprintf(stderr, "openamp-app: remoteproc_init failed\n");
        return 1;
    }
    {
        metal_phys_addr_t pa = RSC_PA;
        rsc = remoteproc_mmap(&rproc, &pa, NULL, sizeof(table_template), 0, &rproc.rsc_io);
    }
    ret = remoteproc_set_rsc_table(&rproc, rsc, sizeof(table_template));
    if (ret) {
        fprintf(stderr, "openamp-app: remoteproc_set_rsc_table: %d\n", ret);
        return 1;
    }
    vdev = remoteproc_create_virtio(&rproc, 0, is_host ? VIRTIO_DEV_DRIVER : VIRTIO_DEV_DEVICE, NULL);
    if (!vdev) {
        fprintf(stderr, "openamp-app: remoteproc_create_virtio failed\n");
        return 1;
    }
    buf_io = remoteproc_get_io_with_pa(&rproc, BUF_PA);
    if (is_host)
        rpmsg_virtio_init_shm_pool(&pool, metal_io_phys_to_virt(buf_io, BUF_PA), BUF_SIZE);
    ret = rpmsg_init_vdev(&rvdev, vdev, NULL, buf_io, is_host ? &pool : NULL);
    if (ret) {
        fprintf(stderr, "openamp-app: rpmsg_init_vdev: %d\n", ret);
        return 1;
    }
    rdev = rpmsg_virtio_get_rpmsg_device(&rvdev);
    ret = rpmsg_create_ept(&ept, rdev, SERVICE, RPMSG_ADDR_ANY, RPMSG_ADDR_ANY, is_host ? ping_cb : echo_cb,
                           unbind_cb);
    if (ret) {
        fprintf(stderr, "openamp-app: rpmsg_create_ept: %d\n", ret);
        return 1;
    }
    if (!is_host) {
        long deadline = now_ms() + START_MS;
        while (echoed < n) {
            if (poll_once(10) < 0) {
                fprintf(stderr, "openamp remote: the host went away after %u echoes\n", echoed);
                return 1;
            }
            if (now_ms() > deadline) {
                fprintf(stderr, "openamp remote: %u of %u echoes, then nothing\n", echoed, n);
                return 1;
            }
            if (echoed > 0)
                deadline = now_ms() + STEP_MS;
        }
        printf("openamp remote: echoed %u messages\n", echoed);
        return 0;
    }
    {
        unsigned passed = 0, failed = 0, total = n * PAYLOAD_MAX;
        uint8_t p[PAYLOAD_MAX];
        long end = now_ms() + START_MS;
        while (!is_rpmsg_ept_ready(&ept) && now_ms() < end)
            poll_once(10);
        if (!is_rpmsg_ept_ready(&ept)) {
            printf("openamp host: %s was never announced\nopenamp host: 0 passed, %u failed\n", SERVICE, total);
            return 1;
        }
        for (unsigned sweep = 0; sweep < n; sweep++) {
            for (unsigned size = 1; size <= PAYLOAD_MAX; size++) {
                pattern(p, sweep, size);
                reply_len = -1;
                ret = rpmsg_send(&ept, p, (int)size);
                if (ret < 0) {
                    printf("openamp host: sweep %u size %u: rpmsg_send returned %d\n", sweep, size, ret);
                    failed = total - passed;
                    goto done;
                }
                end = now_ms() + STEP_MS;
                while (reply_len < 0 && now_ms() < end)
                    if (poll_once(10) < 0)
                        break;
                if (reply_len < 0) {
                    printf("openamp host: sweep %u size %u: no echo within %d ms\n", sweep, size, STEP_MS);
                    failed = total - passed;
                    goto done;
                }
                if (reply_src == ept.dest_addr && (unsigned)reply_len == size && memcmp(reply, p, size) == 0) {
                    passed++;
                } else {
                    printf("openamp host: sweep %u size %u: echo of %d bytes from %#x differs\n", sweep, size,
                           reply_len, reply_src);
                    failed++;
                }
            }
        }
done:
        printf("openamp host: %u passed, %u failed\n", passed, failed);
        return (failed == 0 && passed == total) ? 0 : 1;
    }
}
