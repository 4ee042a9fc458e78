/* A polled stand-in for TI's IpcNotify (source/drivers/ipc_notify), for the one remote
 * core that matters here: Linux on CSL_CORE_ID_A53SS0_0. Written for this project against
 * TI's drivers/ipc_notify.h. There is no mailbox on QEMU's -M none and the host polls, so
 * sending does nothing, and ipc_notify_poll() calls the client registered for RPMSG with
 * the two values Linux's kick would carry (the vring's notify id: 1 = "new messages on
 * vring 1", 0 = "buffers returned on vring 0"), as the mailbox interrupt does. */
#include "ipc_notify_poll.h"
#include <drivers/ipc_notify.h>
#include <stddef.h>

#define LINUX_CORE CSL_CORE_ID_A53SS0_0
#define SELF_CORE CSL_CORE_ID_R5FSS0_0

static IpcNotify_FxnCallback callbacks[IPC_NOTIFY_CLIENT_ID_MAX];
static void *callback_args[IPC_NOTIFY_CLIENT_ID_MAX];
static int polling;

int32_t IpcNotify_registerClient(uint16_t localClientId, IpcNotify_FxnCallback msgCallback, void *args)
{
    if (localClientId >= IPC_NOTIFY_CLIENT_ID_MAX || callbacks[localClientId] != NULL) {
        return SystemP_FAILURE;
    }
    callbacks[localClientId] = msgCallback;
    callback_args[localClientId] = args;
    return SystemP_SUCCESS;
}

int32_t IpcNotify_unregisterClient(uint16_t localClientId)
{
    if (localClientId >= IPC_NOTIFY_CLIENT_ID_MAX) {
        return SystemP_FAILURE;
    }
    callbacks[localClientId] = NULL;
    callback_args[localClientId] = NULL;
    return SystemP_SUCCESS;
}

int32_t IpcNotify_sendMsg(uint32_t remoteCoreId, uint16_t remoteClientId, uint32_t msgValue,
                          uint32_t waitForFifoNotFull)
{
    (void)remoteClientId;
    (void)msgValue;
    (void)waitForFifoNotFull;
    return remoteCoreId == LINUX_CORE ? SystemP_SUCCESS : SystemP_FAILURE;
}

uint32_t IpcNotify_getSelfCoreId(void)
{
    return SELF_CORE;
}

uint32_t IpcNotify_isCoreEnabled(uint32_t coreId)
{
    return coreId == LINUX_CORE ? 1u : 0u;
}

void ipc_notify_poll(void)
{
    IpcNotify_FxnCallback cb = callbacks[IPC_NOTIFY_CLIENT_ID_RPMSG];
    if (cb == NULL) {
        return;
    }
    if (polling) {
        /* pended from inside the callback (a send waiting for a buffer): only the
         * "buffers returned" notification, which is what such a wait needs */
        cb(LINUX_CORE, IPC_NOTIFY_CLIENT_ID_RPMSG, 0u, SystemP_SUCCESS, callback_args[IPC_NOTIFY_CLIENT_ID_RPMSG]);
        return;
    }
    polling = 1;
    cb(LINUX_CORE, IPC_NOTIFY_CLIENT_ID_RPMSG, 1u, SystemP_SUCCESS, callback_args[IPC_NOTIFY_CLIENT_ID_RPMSG]);
    cb(LINUX_CORE, IPC_NOTIFY_CLIENT_ID_RPMSG, 0u, SystemP_SUCCESS, callback_args[IPC_NOTIFY_CLIENT_ID_RPMSG]);
    polling = 0;
}
