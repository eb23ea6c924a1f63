// All shims are static inline in include/CPerchShims.h; SwiftPM needs one source file.
#include "CPerchShims.h"
