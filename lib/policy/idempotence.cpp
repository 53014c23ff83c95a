#include "policy/idempotence.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace cqlcoro::policy {
namespace {

// A token of CQL as far as idempotence needs it: words (lower-cased), literals, markers, punctuation.
struct token {
    enum kind_t { word, string, number, marker, punct, quoted } kind;
    std::string text;  // lower-cased for words; the character for punctuation
};

// Splits `cql` into tokens, skipping comments; string bodies ('..', $$..$$) become one token each.
std::vector<token> tokenize(std::string_view cql) {
    std::vector<token> out;
    std::size_t i = 0;
    const auto n = cql.size();
    auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    while (i < n) {
        const char c = cql[i];
        if (std::isspace(static_cast<unsigned char>(c))) {
            ++i;
        } else if ((c == '-' && i + 1 < n && cql[i + 1] == '-') || (c == '/' && i + 1 < n && cql[i + 1] == '/')) {
            while (i < n && cql[i] != '\n') ++i;
        } else if (c == '/' && i + 1 < n && cql[i + 1] == '*') {
            const auto end = cql.find("*/", i + 2);
            i = end == std::string_view::npos ? n : end + 2;
        } else if (c == '\'') {
            ++i;
            while (i < n && !(cql[i] == '\'' && (i + 1 >= n || cql[i + 1] != '\''))) i += cql[i] == '\'' ? 2 : 1;
            ++i;
            out.push_back({token::string, {}});
        } else if (c == '$' && i + 1 < n && cql[i + 1] == '$') {
            const auto end = cql.find("$$", i + 2);
            i = end == std::string_view::npos ? n : end + 2;
            out.push_back({token::string, {}});
        } else if (c == '"') {
            ++i;
            std::string name;
            while (i < n && !(cql[i] == '"' && (i + 1 >= n || cql[i + 1] != '"'))) {
                name += cql[i];
                i += cql[i] == '"' ? 2 : 1;
            }
            ++i;
            out.push_back({token::quoted, std::move(name)});
        } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
            std::string w;
            while (i < n && (std::isalnum(static_cast<unsigned char>(cql[i])) || cql[i] == '_')) w += lower(cql[i++]);
            out.push_back({token::word, std::move(w)});
        } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                   (c == '-' && i + 1 < n && std::isdigit(static_cast<unsigned char>(cql[i + 1])))) {
            ++i;
            while (i < n && (std::isalnum(static_cast<unsigned char>(cql[i])) || cql[i] == '.' || cql[i] == '-')) ++i;
            out.push_back({token::number, {}});
        } else if (c == '?') {
            ++i;
            out.push_back({token::marker, {}});
        } else if (c == ':' && i + 1 < n && (std::isalpha(static_cast<unsigned char>(cql[i + 1])) || cql[i + 1] == '"')) {
            ++i;  // a named marker :name
            while (i < n && (std::isalnum(static_cast<unsigned char>(cql[i])) || cql[i] == '_' || cql[i] == '"')) ++i;
            out.push_back({token::marker, {}});
        } else {
            out.push_back({token::punct, std::string(1, c)});
            ++i;
        }
    }
    return out;
}

bool is_word(const token& t, std::string_view w) { return t.kind == token::word && t.text == w; }
bool is_punct(const token& t, char c) { return t.kind == token::punct && t.text[0] == c; }
bool is_name(const token& t) { return t.kind == token::word || t.kind == token::quoted; }

// Functions whose result differs between two executions of the same statement.
constexpr std::array<std::string_view, 9> volatile_functions{
    "now", "uuid", "currenttimeuuid", "currenttimestamp", "currentdate", "currenttime", "random", "currenttime_uuid", "gen_random_uuid"};

// One INSERT, UPDATE or DELETE, tokens [b, e): may it run twice?
bool write_is_idempotent(const std::vector<token>& t, std::size_t b, std::size_t e) {
    const bool is_delete = is_word(t[b], "delete");
    for (std::size_t i = b; i < e; ++i) {
        if (is_word(t[i], "if")) return false;  // a condition: a lightweight transaction
        if (t[i].kind == token::word && i + 1 < e && is_punct(t[i + 1], '(') &&
            std::find(volatile_functions.begin(), volatile_functions.end(), t[i].text) != volatile_functions.end())
            return false;
        // name = name + x / name = name - x: a counter, a list, a set or a map. A set or map literal
        // ({..}) is idempotent, and so is removing from a list ([..] after '-'); a number or a marker may
        // be a counter, and adding a list appends.
        if (is_name(t[i]) && i + 4 < e && is_punct(t[i + 1], '=') && is_name(t[i + 2]) && t[i + 2].text == t[i].text &&
            (is_punct(t[i + 3], '+') || is_punct(t[i + 3], '-'))) {
            const auto& rhs = t[i + 4];
            if (is_punct(rhs, '{')) continue;
            if (is_punct(rhs, '[') && is_punct(t[i + 3], '-')) continue;
            return false;
        }
        // name = [..] + name: a list prepend.
        if (is_name(t[i]) && i + 2 < e && is_punct(t[i + 1], '=') && is_punct(t[i + 2], '[')) {
            std::size_t j = i + 3;
            for (int depth = 1; j < e && depth > 0; ++j) depth += is_punct(t[j], '[') ? 1 : is_punct(t[j], ']') ? -1 : 0;
            if (j + 1 < e && is_punct(t[j], '+') && is_name(t[j + 1]) && t[j + 1].text == t[i].text) return false;
        }
        // DELETE l[i] FROM ...: an element by index (a map key given as a string literal is fine).
        if (is_delete && is_name(t[i]) && i + 2 < e && is_punct(t[i + 1], '[') && t[i + 2].kind != token::string) return false;
        if (is_delete && is_word(t[i], "from")) {
            // only the selection before FROM can hold an index delete; conditions were checked above
            for (std::size_t j = i; j < e; ++j)
                if (is_word(t[j], "if")) return false;
            return true;
        }
    }
    return true;
}

}  // namespace

bool infer_idempotence(std::string_view cql) noexcept {
    try {
        const auto t = tokenize(cql);
        if (t.empty()) return false;
        if (is_word(t[0], "select")) return true;
        if (is_word(t[0], "insert") || is_word(t[0], "update") || is_word(t[0], "delete")) return write_is_idempotent(t, 0, t.size());
        if (is_word(t[0], "begin")) {
            // BEGIN [UNLOGGED | COUNTER] BATCH ... APPLY BATCH: each statement, split at its verb.
            if (t.size() > 1 && is_word(t[1], "counter")) return false;
            std::size_t start = 0;
            for (std::size_t i = 1; i <= t.size(); ++i) {
                const bool verb = i < t.size() && (is_word(t[i], "insert") || is_word(t[i], "update") || is_word(t[i], "delete"));
                const bool end = i == t.size() || is_word(t[i], "apply");
                if ((verb || end) && start != 0 && !write_is_idempotent(t, start, i)) return false;
                if (verb) start = i;
                if (end) break;
            }
            return true;
        }
        return false;  // DDL, USE, GRANT, ...
    } catch (...) {  // out of memory while tokenizing: the safe answer
        return false;
    }
}

bool is_conditional(std::string_view cql) noexcept {
    try {
        const auto t = tokenize(cql);
        if (t.empty() || is_word(t[0], "select")) return false;
        return std::any_of(t.begin(), t.end(), [](const token& x) { return is_word(x, "if"); }) &&
               (is_word(t[0], "insert") || is_word(t[0], "update") || is_word(t[0], "delete") || is_word(t[0], "begin"));
    } catch (...) {
        return false;
    }
}

bool is_read_statement(std::string_view cql) noexcept {
    std::size_t i = 0;
    while (i < cql.size() && std::isspace(static_cast<unsigned char>(cql[i]))) ++i;
    const auto word = cql.substr(i, 6);
    if (word.size() < 6) return false;
    for (std::size_t j = 0; j < 6; ++j)
        if (std::tolower(static_cast<unsigned char>(word[j])) != "select"[j]) return false;
    return cql.size() == i + 6 || !std::isalnum(static_cast<unsigned char>(cql[i + 6]));
}

}  // namespace cqlcoro::policy
