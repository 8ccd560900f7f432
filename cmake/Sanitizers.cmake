if(AVPS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # GCC 12 reports false -Wmaybe-uninitialized inside libstdc++'s <regex> and nlohmann's
  # iterators once ASan instruments them (GCC bug 105562 and relatives); the normal build keeps
  # the warning.
  add_compile_options(-Wno-maybe-uninitialized)
endif()
