#include "vring.h"
#include "board.h"

uint32_t vring_avail_off(uint32_t num)
{
    return 16u * num;
}

uint32_t vring_used_off(uint32_t num, uint32_t align)
{
    uint32_t end = 16u * num + 2u * (3u + num);
    return (end + align - 1u) & ~(align - 1u);
}

uint32_t vring_size(uint32_t num, uint32_t align)
{
    return vring_used_off(num, align) + 6u + 8u * num;
}

void vq_attach(struct vq *q, uint32_t da, uint16_t num, uint32_t align)
{
    q->base = da;
    q->num = num;
    q->desc = (volatile struct vring_desc *)(uintptr_t)da;
    q->avail = (volatile struct vring_avail *)(uintptr_t)(da + vring_avail_off(num));
    q->used = (volatile struct vring_used *)(uintptr_t)(da + vring_used_off(num, align));
    q->last_avail = 0;
}

uint16_t vq_pending(const struct vq *q)
{
    return (uint16_t)(q->avail->idx - q->last_avail);
}

int vq_take(struct vq *q, uint16_t *head)
{
    if (q->avail->idx == q->last_avail) {
        return 0;
    }
    dmb(); /* the ring entry (and the buffer) after the index that published it */
    *head = q->avail->ring[q->last_avail % q->num];
    if (*head >= q->num) {
        /* the vendors index their descriptor table with it unchecked; stop, saying why */
        fatal(2, "FATAL: ring at %08x: avail entry %u names descriptor %u of %u\n", (unsigned)q->base,
              (unsigned)q->last_avail, (unsigned)*head, (unsigned)q->num);
    }
    q->last_avail++;
    return 1;
}

void vq_give(struct vq *q, uint16_t head, uint32_t len)
{
    uint16_t idx = q->used->idx;
    q->used->ring[idx % q->num].id = head;
    q->used->ring[idx % q->num].len = len;
    dmb(); /* buffer contents and element before the index that publishes them */
    q->used->idx = (uint16_t)(idx + 1u);
}
