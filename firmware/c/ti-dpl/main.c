/* ti-ipc-rpmsg: TI's own ipc_rpmsg driver (ipc_rpmsg.c, ipc_rpmsg_vring.c from
 * TexasInstruments/mcupsdk-core, compiled unmodified from a tree outside this repository)
 * with this main, which does what TI's ipc_rpmsg_echo_linux example does for Linux: the
 * resource table of TI's IpcRPMessage_linux_sample.c, RPMessage_init with the Linux core,
 * RPMessage_waitForLinuxReady, endpoints 13 and 14 announced as "ti.ipc4.ping-pong" and
 * "rpmsg_chrdev", and every message echoed to its sender. The example runs one FreeRTOS
 * task per endpoint blocked in RPMessage_recv; without an RTOS this main polls both with
 * SystemP_NO_WAIT. Written for this project. */
#include "../common/board.h"
#include <drivers/ipc_rpmsg.h>
#include <kernel/dpl/DebugP.h>
#include <stddef.h>

#define SERVICE_PING "ti.ipc4.ping-pong"
#define ENDPT_PING 13u
#define SERVICE_CHRDEV "rpmsg_chrdev"
#define ENDPT_CHRDEV 14u
#define MAX_MSG_SIZE 496u

extern char gDebugMemLog[DebugP_MEM_LOG_SIZE];

RPMessage_ResourceTable gRPMessage_linuxResourceTable __attribute__((section(".resource_table"), aligned(4096))) = {
    {1U, 2U, {0U, 0U}},
    {offsetof(RPMessage_ResourceTable, vdev), offsetof(RPMessage_ResourceTable, trace)},
    {RPMESSAGE_RSC_TYPE_VDEV, RPMESSAGE_RSC_VIRTIO_ID_RPMSG, 0U, 1U, 0U, 0U, 0U, 2U, {0U, 0U}},
    {RPMESSAGE_RSC_VRING_ADDR_ANY, 4096U, 256U, 1U, 0U},
    {RPMESSAGE_RSC_VRING_ADDR_ANY, 4096U, 256U, 2U, 0U},
    {(RPMESSAGE_RSC_TRACE_INTS_VER0 | RPMESSAGE_RSC_TYPE_TRACE), 0 /* set in main */, DebugP_MEM_LOG_SIZE, 0,
     "trace:r5fss0_0"},
};

static RPMessage_Object endpoints[2];

int main(void)
{
    RPMessage_Params params;
    RPMessage_CreateParams create;
    int32_t status;
    static char msg[MAX_MSG_SIZE + 1];

    gRPMessage_linuxResourceTable.trace.da = (uint32_t)(uintptr_t)gDebugMemLog;
    DebugP_log("[IPC RPMSG ECHO] TI ipc_rpmsg (TI's sources) with the echo example's behaviour\r\n");

    RPMessage_Params_init(&params);
    params.linuxResourceTable = &gRPMessage_linuxResourceTable;
    params.linuxCoreId = CSL_CORE_ID_A53SS0_0;
    status = RPMessage_init(&params);
    DebugP_assert(status == SystemP_SUCCESS);

    status = RPMessage_waitForLinuxReady(SystemP_WAIT_FOREVER);
    DebugP_assert(status == SystemP_SUCCESS);

    RPMessage_CreateParams_init(&create);
    create.localEndPt = ENDPT_PING;
    status = RPMessage_construct(&endpoints[0], &create);
    DebugP_assert(status == SystemP_SUCCESS);
    RPMessage_CreateParams_init(&create);
    create.localEndPt = ENDPT_CHRDEV;
    status = RPMessage_construct(&endpoints[1], &create);
    DebugP_assert(status == SystemP_SUCCESS);

    status = RPMessage_announce(CSL_CORE_ID_A53SS0_0, ENDPT_PING, SERVICE_PING);
    DebugP_assert(status == SystemP_SUCCESS);
    status = RPMessage_announce(CSL_CORE_ID_A53SS0_0, ENDPT_CHRDEV, SERVICE_CHRDEV);
    DebugP_assert(status == SystemP_SUCCESS);
    DebugP_log("[IPC RPMSG ECHO] Remote Core waiting for messages at end point %d and %d ... !!!\r\n", ENDPT_PING,
               ENDPT_CHRDEV);

    for (;;) {
        for (int i = 0; i < 2; i++) {
            uint16_t size = MAX_MSG_SIZE, core, ept;
            status = RPMessage_recv(&endpoints[i], msg, &size, &core, &ept, SystemP_NO_WAIT);
            if (status != SystemP_SUCCESS) {
                continue;
            }
            status = RPMessage_send(msg, size, core, ept, RPMessage_getLocalEndPt(&endpoints[i]),
                                    SystemP_WAIT_FOREVER);
            DebugP_assert(status == SystemP_SUCCESS);
        }
    }
}
