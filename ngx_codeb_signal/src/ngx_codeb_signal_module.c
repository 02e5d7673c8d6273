#include "ngx_codeb_signal.h"
