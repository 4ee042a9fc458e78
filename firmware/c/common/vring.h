/* A device-side (remote) view of one virtio split ring, polled. Written for this
 * project; each firmware decides what to accept and what length to return. */
#ifndef FW_VRING_H
#define FW_VRING_H

#include "rsc.h"
#include <stdint.h>

struct vq {
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
    uint32_t base;
    uint16_t num;
    uint16_t last_avail; /* next avail entry to take (the device's private index) */
};

/* Byte offsets of the parts of a ring of `num` entries at alignment `align`
 * (virtio 1.x 2.7: the used ring starts at the next multiple of `align`). */
uint32_t vring_avail_off(uint32_t num);
uint32_t vring_used_off(uint32_t num, uint32_t align);
uint32_t vring_size(uint32_t num, uint32_t align);

void vq_attach(struct vq *q, uint32_t da, uint16_t num, uint32_t align);
/* Entries the driver made available that we have not taken yet. */
uint16_t vq_pending(const struct vq *q);
/* Take the next available head; 0 when none. A head past the descriptor table is fatal
 * (exit 2, with the ring and the index). */
int vq_take(struct vq *q, uint16_t *head);
/* Return `head` with used length `len` (element first, then the index). */
void vq_give(struct vq *q, uint16_t head, uint32_t len);

#endif
