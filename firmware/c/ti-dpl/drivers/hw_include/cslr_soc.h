/* Stand-in for TI's drivers/hw_include/cslr_soc.h (which pulls in the whole CSL): only
 * what ipc_rpmsg and ipc_notify need, the AM64x core ids. Written for this project; the
 * values are those TI publishes for AM64x (cslr_soc_defines.h). */
#ifndef INTERCORE_TI_STUB_CSLR_SOC_H
#define INTERCORE_TI_STUB_CSLR_SOC_H

#define CSL_CORE_ID_M4FSS0_0 (0U)
#define CSL_CORE_ID_R5FSS0_0 (1U)
#define CSL_CORE_ID_R5FSS0_1 (2U)
#define CSL_CORE_ID_R5FSS1_0 (3U)
#define CSL_CORE_ID_R5FSS1_1 (4U)
#define CSL_CORE_ID_A53SS0_0 (5U)
#define CSL_CORE_ID_A53SS0_1 (6U)
#define CSL_CORE_ID_MAX (7U)

#endif
