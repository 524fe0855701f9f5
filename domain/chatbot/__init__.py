"""The homepage chatbot: guided flows as data, free-text help through triage, and a hand-off to a real
consultation that the person submits themselves.

Standard library only (domain rule). One idea per module:

- `model`: the flow model (flows, nodes, choices, the draft they collect) and the chatbot's constants;
  infra/chatbot_loader.py builds it from chatbot.yaml through a pydantic schema;
- `graph`: the checks a schema cannot express (references into the knowledge, reachability, cycles,
  languages) and `iter_paths`;
- `engine`: the pure turn engine: a session state and one input to the next state and what to say;
- `ports`: the stored records and the ports the service needs;
- `service`: `ChatbotService`, the use cases, through the ports.

Free text is never stored and never logged: it goes to triage and the transcript keeps a placeholder.
"""

from domain.chatbot.engine import Engine, Plan, Say, State, UnknownChoice
from domain.chatbot.graph import References, flow_problems, iter_paths, language_problems, validate_flows
from domain.chatbot.model import (
    CHART_PREFIX,
    DRAFT_KEYS,
    END,
    FLOW_PREFIX,
    FREE_TEXT_PLACEHOLDER,
    LABEL_NAMES,
    LANG_PREFIX,
    MAX_TEXT_CHARS,
    MENU,
    TEXT_KEYS,
    TEXT_NAMES,
    Choice,
    Draft,
    Flow,
    FlowError,
    Flows,
    Node,
)
from domain.chatbot.ports import (
    ChartWalker,
    ChatbotRepository,
    ChatbotTokens,
    ChatbotUnitOfWork,
    ChatbotUnitOfWorkFactory,
    ChatDraft,
    ChatSession,
    ChatTurn,
    DeskResolver,
)
from domain.chatbot.service import (
    BotMessage,
    ChatbotPolicy,
    ChatbotService,
    Handoff,
    Link,
    Opened,
    Transcript,
    TranscriptEntry,
    TurnReply,
)

__all__ = [
    "CHART_PREFIX",
    "DRAFT_KEYS",
    "END",
    "FLOW_PREFIX",
    "FREE_TEXT_PLACEHOLDER",
    "LABEL_NAMES",
    "LANG_PREFIX",
    "MAX_TEXT_CHARS",
    "MENU",
    "TEXT_KEYS",
    "TEXT_NAMES",
    "BotMessage",
    "ChartWalker",
    "ChatDraft",
    "ChatSession",
    "ChatTurn",
    "ChatbotPolicy",
    "ChatbotRepository",
    "ChatbotService",
    "ChatbotTokens",
    "ChatbotUnitOfWork",
    "ChatbotUnitOfWorkFactory",
    "Choice",
    "DeskResolver",
    "Draft",
    "Engine",
    "Flow",
    "FlowError",
    "Flows",
    "Handoff",
    "Link",
    "Node",
    "Opened",
    "Plan",
    "References",
    "Say",
    "State",
    "Transcript",
    "TranscriptEntry",
    "TurnReply",
    "UnknownChoice",
    "flow_problems",
    "iter_paths",
    "language_problems",
    "validate_flows",
]
