/* SPDX-License-Identifier: LGPL-2.1-only */
/*
 * The PVH/HVM end of xmig's engine: X86_TSC_INFO, HVM_CONTEXT and
 * HVM_PARAMS.  Params go after the last PAGE_DATA: the receiver clears
 * the pages they point at (store, console, ioreq rings).
 */
#include <errno.h>
#include <stdlib.h>

#include <stdint.h>
#include <xen/hvm/params.h>

#include "engine-core.h"

static int hvm_setup(struct engine *e)
{
    e->p2m_size = (size_t)e->info.max_gpfn + 1;
    return 0;
}

/*
 * Of PVH/HVM's own state nothing goes before the pages, and no layout of
 * theirs needs checking before a pass.
 */
static int hvm_none(struct engine *e)
{
    return 0;
}

static xmig_pfn_t hvm_frame(const struct engine *e, xmig_pfn_t pfn)
{
    return pfn;
}

static int hvm_end(struct engine *e)
{
    /* The params stock libxenguest sends, when non-zero. */
    static const unsigned int params[] = {
        HVM_PARAM_STORE_PFN,
        HVM_PARAM_IOREQ_PFN,
        HVM_PARAM_BUFIOREQ_PFN,
        HVM_PARAM_PAGING_RING_PFN,
        HVM_PARAM_MONITOR_RING_PFN,
        HVM_PARAM_SHARING_RING_PFN,
        HVM_PARAM_VM86_TSS_SIZED,
        HVM_PARAM_CONSOLE_PFN,
        HVM_PARAM_ACPI_IOPORTS_LOCATION,
        HVM_PARAM_VIRIDIAN,
        HVM_PARAM_IDENT_PT,
        HVM_PARAM_VM_GENERATION_ID_ADDR,
        HVM_PARAM_IOREQ_SERVER_PFN,
        HVM_PARAM_NR_IOREQ_SERVER_PAGES,
        HVM_PARAM_X87_FIP_WIDTH,
        HVM_PARAM_MCA_CAP,
    };
    uint64_t entries[2 * (sizeof(params) / sizeof(params[0]))];
    uint32_t hdr[2] = {0, 0};
    uint8_t tsc[24];
    void *ctx = NULL;
    size_t len = 0, i;
    int rc;

    if (e->x->ops->tsc_info(e->x, e->domid, tsc) < 0 ||
        xmig__engine_record(e, REC_X86_TSC_INFO, tsc, sizeof(tsc)) < 0)
        return -1;
    if (e->x->ops->hvm_context(e->x, e->domid, &ctx, &len) < 0)
        return -1;
    rc = xmig__engine_record(e, REC_HVM_CONTEXT, ctx, len);
    free(ctx);
    if (rc < 0)
        return -1;
    for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        uint64_t v;

        if (e->x->ops->hvm_param(e->x, e->domid, params[i], &v) < 0)
            return -1;
        if (v) {
            entries[2 * hdr[0]] = params[i];
            entries[2 * hdr[0] + 1] = v;
            hdr[0]++;
        }
    }
    if (!hdr[0])
        return 0;
    return xmig__engine_record2(e, REC_HVM_PARAMS, hdr, sizeof(hdr), entries,
                                hdr[0] * 16);
}

static void hvm_cleanup(struct engine *e)
{
}

const struct engine_ops xmig__engine_ops_hvm = {
    .dhdr_type = DHDR_TYPE_X86_HVM,
    .sparse = true,
    .setup = hvm_setup,
    .static_data = hvm_none,
    .start_of_stream = hvm_none,
    .check_vm_state = hvm_none,
    .pfn_to_frame = hvm_frame,
    .end_of_checkpoint = hvm_end,
    .cleanup = hvm_cleanup,
};
