"""Chat formats by name (llama-cpp-python's ``chat_format=``), as Jinja templates rendered by the library's Jinja
interpreter, the same one that renders a model's own ``tokenizer.chat_template``.

The templates are written here from each format's public description (model cards and the formats' papers/repos);
they see ``messages``, ``bos_token``, ``eos_token`` and ``add_generation_prompt`` as Hugging Face templates do,
rendered with trim_blocks and lstrip_blocks (so a newline right after a block tag is written as ``{{ '\\n' }}``).
Each format also names the stop strings llama-cpp-python adds for it (its end-of-turn marker as text, for a
vocabulary where it is not a control token). A role a format cannot express raises an error naming it.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple


class ChatFormat(NamedTuple):
    template: str
    stop: List[str]


def _roles_error(name: str, allowed: str) -> str:
    return ("{{ raise_exception('chat_format " + name + ": role ' ~ m.role ~ ' is not supported (" + allowed +
            ")') }}")


# Meta's Llama 2 chat: the system prompt inside the first [INST] block between <<SYS>> markers; every exchange is
# "<s>[INST] user [/INST] answer </s>".
_LLAMA_2 = (
    "{% if messages and messages[0].role == 'system' %}"
    "{% set system = messages[0].content %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}"
    "{{ bos_token }}[INST] {% if loop.first and system %}<<SYS>>\n{{ system }}\n<</SYS>>\n\n{% endif %}"
    "{{ m.content | trim }} [/INST]"
    "{% elif m.role == 'assistant' %}"
    " {{ m.content | trim }} {{ eos_token }}"
    "{% else %}" + _roles_error("llama-2", "a first system message, then user and assistant") +
    "{% endif %}"
    "{% endfor %}"
)

# Meta's Llama 3 header format: <|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>.
_LLAMA_3 = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content | trim }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

# ChatML (OpenAI's markup, used by many fine-tunes): <|im_start|>role\n content <|im_end|>\n.
_CHATML = (
    "{% for m in messages %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen (1.x) chat: ChatML with a default system message.
_QWEN = (
    "{% if not messages or messages[0].role != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}" + _CHATML
)

# Mistral Instruct: "<s>[INST] user [/INST] answer</s>[INST] ..."; no system role, so a system message is put
# before the first user message.
_MISTRAL_INSTRUCT = (
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set system = messages[0].content %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}"
    "[INST] {% if loop.first and system %}{{ system }}\n\n{% endif %}{{ m.content }} [/INST]"
    "{% elif m.role == 'assistant' %}"
    "{{ m.content }}{{ eos_token }}"
    "{% else %}" + _roles_error("mistral-instruct", "a first system message, then user and assistant") +
    "{% endif %}"
    "{% endfor %}"
)

# Google's Gemma: <start_of_turn>user|model\n content <end_of_turn>\n; no system role, so a system message is put
# before the first user message (as Gemma 3's own template does).
_GEMMA = (
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{% set system = messages[0].content %}{% set turns = messages[1:] %}"
    "{% else %}{% set system = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}"
    "<start_of_turn>user\n{% if loop.first and system %}{{ system }}\n\n{% endif %}{{ m.content | trim }}<end_of_turn>\n"
    "{% elif m.role == 'assistant' %}"
    "<start_of_turn>model\n{{ m.content | trim }}<end_of_turn>\n"
    "{% else %}" + _roles_error("gemma", "a first system message, then user and assistant") +
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

# Microsoft's Phi-3: <|role|>\n content <|end|>\n.
_PHI_3 = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|{{ m.role }}|>\n{{ m.content }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# HuggingFace's Zephyr: <|role|>\n content </s>\n.
_ZEPHYR = (
    "{% for m in messages %}"
    "<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Stanford Alpaca: an instruction preamble, then "### Instruction:" / "### Response:" sections.
_ALPACA = (
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{{ messages[0].content }}{% set turns = messages[1:] %}"
    "{% else %}"
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "{% set turns = messages %}{% endif %}{{ '\\n\\n' }}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %}### Instruction:\n{{ m.content }}\n\n"
    "{% elif m.role == 'assistant' %}### Response:\n{{ m.content }}{{ eos_token }}\n\n"
    "{% else %}" + _roles_error("alpaca", "a first system message, then user and assistant") +
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}### Response:\n{% endif %}"
)

# Vicuna v1.1: a system sentence, then "USER: ... ASSISTANT: ...</s>".
_VICUNA = (
    "{{ bos_token }}"
    "{% if messages and messages[0].role == 'system' %}"
    "{{ messages[0].content }}{% set turns = messages[1:] %}"
    "{% else %}"
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions."
    "{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{% if m.role == 'user' %} USER: {{ m.content }}"
    "{% elif m.role == 'assistant' %} ASSISTANT: {{ m.content }}{{ eos_token }}"
    "{% else %}" + _roles_error("vicuna", "a first system message, then user and assistant") +
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)

# OpenChat 3.5: "GPT4 Correct User: ...<|end_of_turn|>GPT4 Correct Assistant: ...<|end_of_turn|>".
_OPENCHAT = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "{% if m.role == 'system' %}{{ m.content }}<|end_of_turn|>"
    "{% elif m.role == 'user' %}GPT4 Correct User: {{ m.content }}<|end_of_turn|>"
    "{% elif m.role == 'assistant' %}GPT4 Correct Assistant: {{ m.content }}<|end_of_turn|>"
    "{% else %}" + _roles_error("openchat", "system, user and assistant") +
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}GPT4 Correct Assistant:{% endif %}"
)

CHAT_FORMATS: Dict[str, ChatFormat] = {
    "llama-2": ChatFormat(_LLAMA_2, []),
    "llama-3": ChatFormat(_LLAMA_3, ["<|eot_id|>"]),
    "chatml": ChatFormat(_CHATML, ["<|im_end|>"]),
    "qwen": ChatFormat(_QWEN, ["<|im_end|>", "<|endoftext|>"]),
    "mistral-instruct": ChatFormat(_MISTRAL_INSTRUCT, ["</s>"]),
    "gemma": ChatFormat(_GEMMA, ["<end_of_turn>"]),
    "phi-3": ChatFormat(_PHI_3, ["<|end|>"]),
    "zephyr": ChatFormat(_ZEPHYR, ["</s>"]),
    "alpaca": ChatFormat(_ALPACA, []),
    "vicuna": ChatFormat(_VICUNA, []),
    "openchat": ChatFormat(_OPENCHAT, ["<|end_of_turn|>"]),
}

# llama-cpp-python's name for "the template in the model file".
MODEL_TEMPLATE_NAMES = ("chat_template.default",)


def known_names() -> List[str]:
    return sorted(CHAT_FORMATS) + list(MODEL_TEMPLATE_NAMES)
