/* SPDX-License-Identifier: LGPL-2.1-only */
/* domain.c: the event loop's own Xen handle (name -> domid). */
#ifndef XMIGD_DOMAIN_H
#define XMIGD_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xmig.h"

void domain_init(void);
void domain_shutdown(void);
bool domain_xen_available(void);
/* NULL if Xen cannot be opened; *why_r says why (static storage). */
xmig_xen *domain_xen(const char **why_r);
struct domain_entry {
    uint32_t domid;
    enum xmig_domtype type;
    bool dying;
    char name[64];
};
/* Every domain but 0; *list_r is malloc'd.  -1 when Xen is unavailable. */
int domain_list(struct domain_entry **list_r, size_t *n_r, const char **why_r);

#endif
