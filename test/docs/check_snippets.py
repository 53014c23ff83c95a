#!/usr/bin/env python3
"""Compiles every C++ snippet of the README and the guides, so that none of them rots.

    check_snippets.py SOURCE_ROOT COMPILER...

Takes each ```cpp block of README.md and docs/*.md and compiles them all as one translation unit
(-fsyntax-only: types, overloads and templates are checked; nothing links), with #line directives so
that an error names the Markdown file and line. A block's fence says where it goes:

  ```cpp          statements: the body of a coroutine with `cqlcoro::session& session` and
                  `asio::any_io_executor ex` in scope (`co_await` works; values it returns are ignored)
  ```cpp file     declarations at namespace scope: types, functions, a whole program (its `main` is
                  renamed; its #include lines are hoisted)

Every snippet sees <cqlcoro/cqlcoro.hpp>, the usual Asio headers, fmt, `namespace asio = boost::asio`
and std::chrono_literals. Each compiler given checks them, with warnings as errors.
"""
import pathlib
import re
import subprocess
import sys
import tempfile

PRELUDE = """\
#include <cqlcoro/cqlcoro.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <fmt/format.h>
#include <chrono>
#include <cstdint>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>
namespace asio = boost::asio;
using namespace std::chrono_literals;
"""


def blocks(path):
    """(first line number of the code, info string, code) for each ```cpp block."""
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(cpp\b.*)$", lines[i])
        if not m:
            i += 1
            continue
        info, start, code = m.group(1).split(), i + 2, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            code.append(lines[i])
            i += 1
        yield start, info, code
        i += 1


def main():
    root, compilers = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2:]
    files = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    hoisted, body, count = [], [], 0
    for f in files:
        rel = f.relative_to(root)
        for start, info, code in blocks(f):
            count += 1
            n = count
            if "file" in info[1:]:
                kept = []
                for line in code:
                    if line.startswith("#include"):
                        hoisted.append(line)
                        kept.append("")  # keep the line numbers
                    else:
                        kept.append(re.sub(r"\bint main\(", f"auto main_{n}(", line))  # no implicit return 0 once renamed
                body.append(f"namespace snippet_{n} {{")
                body.append(f'#line {start} "{rel}"')
                body.extend(kept)
                body.append("}")
            else:
                body.append(f"namespace snippet_{n} {{")
                body.append("[[maybe_unused]] asio::awaitable<void> run([[maybe_unused]] cqlcoro::session& session, "
                            "[[maybe_unused]] asio::any_io_executor ex) {")
                body.append(f'#line {start} "{rel}"')
                body.extend(code)
                body.append("co_return;")
                body.append("}")
                body.append("}")
    tu = PRELUDE + "\n".join(hoisted) + "\n" + "\n".join(body) + "\n"
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as out:
        out.write(tu)
    status = 0
    for cxx in compilers:
        cmd = [cxx, "-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
               "-Wno-unused-parameter", "-Wno-unused-function", "-Wno-missing-field-initializers", "-Werror",
               f"-I{root / 'include'}", out.name]
        r = subprocess.run(cmd)
        print(f"check_snippets: {cxx}: {count} C++ snippets in {len(files)} files: " + ("all compile" if r.returncode == 0 else f"errors above ({out.name})"))
        status = status or r.returncode
    if status == 0:
        pathlib.Path(out.name).unlink()
    return status


if __name__ == "__main__":
    sys.exit(main())
