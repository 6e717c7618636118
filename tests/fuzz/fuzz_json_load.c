/* fuzz_json_load — any byte string given to fy_json_load either loads as a value
 * that serialises back and reloads, or is refused with FY_E_BAD_REQUEST. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fy_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    fy_err err = { 0 };
    fy_code rc = fy_json_load((const char *)data, size, &j, &err);
    if (rc != FY_E_OK) {
        if (rc != FY_E_BAD_REQUEST || !err.msg[0])
            abort();
        return 0;
    }
    if (!j)
        abort();
    /* what was accepted must round-trip: handlers echo values in responses */
    char *dumped = fy_json_dump(j);
    if (!dumped)
        abort();
    json_t *again = NULL;
    if (fy_json_load(dumped, strlen(dumped), &again, &err) != FY_E_OK || !json_equal(j, again))
        abort();
    json_decref(again);
    free(dumped);
    json_decref(j);
    return 0;
}
