# trainsim_embed(<target> <symbol> <file>): a static library that holds the text of <file>
# as `std::string_view trainsim::embedded::<symbol>()`. Used for the data catalogs
# (models, GPUs, default costs, the quickstart scenario), so the binary runs out of the box.
function(trainsim_embed target symbol file)
  set(out ${CMAKE_BINARY_DIR}/embedded/${symbol}.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DSYM=${symbol}
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_file.cmake
    DEPENDS ${file} ${CMAKE_SOURCE_DIR}/cmake/embed_file.cmake
    VERBATIM)
  add_library(${target} STATIC ${out})
  target_include_directories(${target} PUBLIC ${CMAKE_SOURCE_DIR})
endfunction()
