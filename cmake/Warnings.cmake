# Linked privately by our own targets only, never by third-party code.
add_library(avps_warnings INTERFACE)
target_compile_options(avps_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow)
if(AVPS_WARNINGS_AS_ERRORS)
  target_compile_options(avps_warnings INTERFACE -Werror)
endif()
