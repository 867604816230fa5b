"""The draft report from a vision-language model over an OpenAI-compatible API.

Defaults: DashScope's compatible mode with ``qwen-vl-max``; any OpenAI-compatible endpoint
(a local Ollama or vLLM server too) works by setting LIVERHEALTH_LLM_BASE_URL and
LIVERHEALTH_LLM_MODEL. The request carries the measured findings and two PNG images (the
slice and its overlay), never patient identifiers. Every failure becomes a one-line notice
and no draft: the report still has its measured findings.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from liverhealth import config

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
DEFAULT_MODEL = "qwen-vl-max"
DEFAULT_TIMEOUT_S = 60.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

SYSTEM_PROMPT = (
    "You assist a radiologist reading a contrast-enhanced abdominal CT. You receive one axial slice, "
    "the same slice with an automatic segmentation overlay (liver green, tumour red), and the measured "
    "findings computed from the segmentation. Write a short draft report in plain text: findings, then an "
    "impression. Use only the numbers given in the measured findings; never invent, round differently or "
    "add measurements, lesion counts or sizes. Do not give a LI-RADS category or a definitive diagnosis. "
    "If the images seem to disagree with the segmentation, say so. End with: 'Draft for radiologist "
    "review; not a medical device.'"
)


@dataclass(frozen=True)
class LlmSettings:
    """Where and how to ask for a draft. The API key is never shown in repr or messages."""

    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = 2

    @classmethod
    def from_environment(cls) -> LlmSettings:
        """LIVERHEALTH_LLM_* (or DASHSCOPE_API_KEY) over the config file over the defaults."""
        key = (config.setting("llm_api_key", "LIVERHEALTH_LLM_API_KEY")
               or os.environ.get("DASHSCOPE_API_KEY") or None)
        return cls(base_url=config.setting("llm_base_url", "LIVERHEALTH_LLM_BASE_URL", DEFAULT_BASE_URL) or "",
                   model=config.setting("llm_model", "LIVERHEALTH_LLM_MODEL", DEFAULT_MODEL) or "",
                   api_key=key,
                   timeout_s=float(config.setting("llm_timeout_s", "LIVERHEALTH_LLM_TIMEOUT", "60") or 60))

    @property
    def host(self) -> str:
        parsed = urlparse(self.base_url)
        return parsed.netloc or self.base_url

    @property
    def is_local(self) -> bool:
        return (urlparse(self.base_url).hostname or "") in LOCAL_HOSTS


@dataclass(frozen=True)
class DraftResult:
    """The draft text, or None and a notice saying why there is none."""

    text: str | None
    notice: str | None
    model: str
    endpoint: str


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_messages(findings: str, slice_png: bytes, overlay_png: bytes) -> list[dict]:
    """The chat request: system prompt, then the findings and both images."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": [
            {"type": "text", "text": f"Measured findings (from the segmentation):\n{findings}"},
            {"type": "text", "text": "Image 1: the axial CT slice. Image 2: the same slice with the overlay."},
            {"type": "image_url", "image_url": {"url": png_data_url(slice_png)}},
            {"type": "image_url", "image_url": {"url": png_data_url(overlay_png)}},
        ]},
    ]


def _notice_for(exc: Exception, settings: LlmSettings) -> str:
    import openai

    where = f"the LLM endpoint {settings.host}"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{where} refused the API key; check it in Settings or LIVERHEALTH_LLM_API_KEY."
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within {settings.timeout_s:.0f} s."
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach {where}; check the network or LIVERHEALTH_LLM_BASE_URL."
    if isinstance(exc, openai.RateLimitError):
        return f"{where} is rate-limiting requests; try again later."
    if isinstance(exc, openai.NotFoundError):
        return f"{where} does not know the model '{settings.model}' (HTTP 404)."
    if isinstance(exc, openai.APIStatusError):
        return f"{where} failed with HTTP {exc.status_code} after {settings.max_retries} retries."
    return f"the answer of {where} could not be read ({exc.__class__.__name__})."


def request_draft(findings: str, slice_png: bytes, overlay_png: bytes, settings: LlmSettings | None = None,
                  on_text: Callable[[str], None] | None = None,
                  cancel: Callable[[], bool] | None = None) -> DraftResult:
    """Stream a draft from the model; ``on_text`` receives each piece as it arrives."""
    settings = settings or LlmSettings.from_environment()
    outcome = DraftResult(None, None, settings.model, settings.base_url)
    key = settings.api_key or ("not-needed" if settings.is_local else None)
    if not key:
        return DraftResult(None, "No LLM draft: no API key is set (LIVERHEALTH_LLM_API_KEY or "
                                 "DASHSCOPE_API_KEY).", settings.model, settings.base_url)
    try:
        import openai
    except ImportError:
        return DraftResult(None, "No LLM draft: the openai package is not installed "
                                 "(pip install 'liverhealth[llm]').", settings.model, settings.base_url)
    client = openai.OpenAI(api_key=key, base_url=settings.base_url, timeout=settings.timeout_s,
                           max_retries=settings.max_retries)
    pieces: list[str] = []
    try:
        stream = client.chat.completions.create(model=settings.model, temperature=0.2, stream=True,
                                                messages=build_messages(findings, slice_png, overlay_png))
        with stream:
            for chunk in stream:
                if cancel is not None and cancel():
                    return DraftResult(None, "No LLM draft: cancelled by the user.", settings.model,
                                       settings.base_url)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    pieces.append(delta)
                    if on_text is not None:
                        on_text(delta)
    except Exception as exc:  # the SDK raises many types; each becomes a notice, never a crash
        return DraftResult(None, f"No LLM draft: {_notice_for(exc, settings)}", settings.model, settings.base_url)
    finally:
        client.close()
    text = "".join(pieces).strip()
    if not text:
        return DraftResult(None, f"No LLM draft: the LLM endpoint {settings.host} returned an empty answer.",
                           settings.model, settings.base_url)
    return DraftResult(text, None, outcome.model, outcome.endpoint)
