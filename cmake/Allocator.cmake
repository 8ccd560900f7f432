# The memory allocator avps links (docs/architecture.md "The allocator"). jemalloc by default: the
# run, the gate and the read paths allocate and free millions of small objects around a large
# long-lived record, and glibc's malloc took a growing share of each call as that record grew
# (bench/README.md). Sanitizer and fuzz builds replace malloc themselves, so they take the system's.
if(AVPS_SANITIZE OR AVPS_FUZZ)
  set(avps_default_allocator system)
else()
  set(avps_default_allocator jemalloc)
endif()
set(AVPS_ALLOCATOR "${avps_default_allocator}" CACHE STRING "The memory allocator avps links: jemalloc or system")
set_property(CACHE AVPS_ALLOCATOR PROPERTY STRINGS jemalloc system)

if(AVPS_ALLOCATOR STREQUAL "jemalloc")
  if(AVPS_SANITIZE OR AVPS_FUZZ)
    message(FATAL_ERROR "AVPS_ALLOCATOR=jemalloc: the sanitizers replace malloc themselves; configure this "
                        "build with -DAVPS_ALLOCATOR=system")
  endif()
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(JEMALLOC IMPORTED_TARGET jemalloc>=5.3)
  if(NOT JEMALLOC_FOUND)
    message(FATAL_ERROR "AVPS_ALLOCATOR=jemalloc but jemalloc 5.3 was not found: install libjemalloc-dev "
                        "(scripts/setup.sh does), or configure with -DAVPS_ALLOCATOR=system")
  endif()
elseif(NOT AVPS_ALLOCATOR STREQUAL "system")
  message(FATAL_ERROR "AVPS_ALLOCATOR=${AVPS_ALLOCATOR}: the choices are jemalloc and system")
endif()
