#ifndef INTERCORE_TI_STUB_IPC_NOTIFY_POLL_H
#define INTERCORE_TI_STUB_IPC_NOTIFY_POLL_H
/* What the mailbox interrupt would deliver: see ipc_notify.c. */
void ipc_notify_poll(void);
#endif
