#include <ngx_codeb_core.h>
