"""A smolagents ``ToolCallingAgent`` whose LLM is ``medany serve`` and whose tools are MedAny's lookups.

    medany serve &          # the OpenAI-compatible API on http://127.0.0.1:8000/v1
    python examples/smolagents_agent.py "What is the ICD-10 code for a tension headache?"

smolagents asks the server for tool calls (``tool_choice="required"``, with its own
``final_answer`` tool); MedAny writes every call under constraint, so each one
parses and matches its schema. The tools run here, in the agent's process, over the
bundled knowledge base; their results go back to the model as observations.
"""

from __future__ import annotations

import argparse

from smolagents import OpenAIServerModel, Tool, ToolCallingAgent

from multimodal.tools import builtin  # noqa: F401  (registers the built-in tools)
from multimodal.tools.registry import TOOLS, ToolContext, describe_result

KNOWLEDGE_TOOLS = ("icd10_lookup", "phenotype_lookup", "drug_lookup", "nutrient_lookup")


def smolagents_tool(name: str, context: ToolContext) -> Tool:
    """MedAny's tool ``name`` as a smolagents :class:`Tool` (same schema; the result as cited text)."""
    spec = TOOLS[name]
    required = spec.parameters["required"]
    inputs = {arg: {"type": p["type"], "description": p.get("description", arg),
                    **({} if arg in required else {"nullable": True})}
              for arg, p in spec.parameters["properties"].items()}

    class MedAnyTool(Tool):
        skip_forward_signature_validation = True

        def forward(self, **arguments) -> str:
            return describe_result(spec.call({k: v for k, v in arguments.items() if v is not None}, context))

    MedAnyTool.name, MedAnyTool.description, MedAnyTool.inputs = name, spec.description, inputs
    MedAnyTool.output_type = "string"
    return MedAnyTool()


def build_agent(api_base: str, knowledge, api_key: str = "unused", max_steps: int = 4) -> ToolCallingAgent:
    """The agent: MedAny's knowledge tools, the model behind ``api_base``."""
    context = ToolContext(knowledge=knowledge)
    model = OpenAIServerModel(model_id="medany", api_base=api_base, api_key=api_key)
    return ToolCallingAgent(tools=[smolagents_tool(n, context) for n in KNOWLEDGE_TOOLS], model=model,
                            max_steps=max_steps, verbosity_level=0)


def main() -> None:
    from multimodal.knowledge.build import open_knowledge

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question")
    parser.add_argument("--api-base", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key", default="unused")
    args = parser.parse_args()
    print(build_agent(args.api_base, open_knowledge(), args.api_key).run(args.question))


if __name__ == "__main__":
    main()
