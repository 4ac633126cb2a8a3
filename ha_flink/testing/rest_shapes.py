"""Flink's own REST messages as the judge of our JSON: a small Java program, compiled against Flink 2.3's
flink-dist jar, that finds every REST endpoint Flink defines (each `MessageHeaders` class with an instance:
its HTTP method, URL template and response class) and reads a body for one of them with Flink's strict
REST ObjectMapper (`RestMapperUtils.getStrictObjectMapper`: an unknown, missing or mistyped field fails),
as Flink's RestClient does. Its list of endpoints is Flink's, not ours."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ha_flink.testing.flink_dist import java_against_flink

_SOURCE = r"""
import java.util.*;
import java.util.jar.*;
import org.apache.flink.runtime.rest.messages.MessageHeaders;
import org.apache.flink.runtime.rest.util.RestMapperUtils;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JavaType;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

public class RestShapes {
    public static void main(String[] args) throws Exception {
        Map<String, MessageHeaders<?, ?, ?>> endpoints = new TreeMap<>();
        try (JarFile jar = new JarFile(args[0])) {
            for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
                String name = e.nextElement().getName();
                if (!name.startsWith("org/apache/flink/runtime/rest/") || !name.endsWith("Headers.class") || name.contains("$"))
                    continue;
                Class<?> c = Class.forName(name.replace('/', '.').substring(0, name.length() - 6), false,
                        RestShapes.class.getClassLoader());
                if (!MessageHeaders.class.isAssignableFrom(c) || java.lang.reflect.Modifier.isAbstract(c.getModifiers()))
                    continue;
                try {
                    MessageHeaders<?, ?, ?> h = (MessageHeaders<?, ?, ?>) c.getMethod("getInstance").invoke(null);
                    endpoints.put(h.getHttpMethod() + " " + h.getTargetRestEndpointURL(), h);
                } catch (NoSuchMethodException ignored) {
                    // (headers built per use, with parameters: not an endpoint of their own)
                }
            }
        }
        java.io.PrintStream out = new java.io.PrintStream(System.out, true, "UTF-8");
        if (args.length > 1 && args[1].equals("--list")) {
            for (String key : endpoints.keySet()) out.println(key);
            return;
        }
        ObjectMapper mapper = RestMapperUtils.getStrictObjectMapper();
        java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(System.in, "UTF-8"));
        String line;
        while ((line = in.readLine()) != null) {
            int tab = line.indexOf('\t');
            String key = line.substring(0, tab);
            try {
                JavaType type;
                if (key.startsWith("CLASS ")) {  // a response class named outright (headers built with parameters)
                    type = mapper.getTypeFactory().constructType(Class.forName(key.substring(6)));
                } else {
                    MessageHeaders<?, ?, ?> h = endpoints.get(key);
                    Collection<Class<?>> parameters = h.getResponseTypeParameters();
                    type = parameters.isEmpty() ? mapper.getTypeFactory().constructType(h.getResponseClass())
                            : mapper.getTypeFactory().constructParametricType(h.getResponseClass(),
                                    parameters.toArray(new Class<?>[0]));
                }
                mapper.readValue(line.substring(tab + 1), type);
                out.println("OK");
            } catch (Exception error) {
                out.println("FAIL " + String.valueOf(error.getMessage()).replace("\n", " ").replace("\r", " "));
            }
        }
    }
}
"""


@dataclass(frozen=True)
class RestShapeJudge:
    command: list[str]
    jar: str

    def endpoints(self) -> list[tuple[str, str]]:
        """Every (method, URL template) Flink 2.3 defines, e.g. ("GET", "/jobs/:jobid/vertices/:vertexid")."""
        done = subprocess.run([*self.command, self.jar, "--list"], capture_output=True, text=True, timeout=120,
                              check=True)
        return [tuple(line.split(" ", 1)) for line in done.stdout.splitlines() if line]  # type: ignore[misc]

    def judge(self, answers: dict[tuple[str, str], Any]) -> dict[tuple[str, str], str]:
        """(method, template) -> "OK" or "FAIL <why>", for each answer body (as parsed JSON). A key
        ("CLASS", "<Flink class name>") reads the body as that class (for headers Flink builds per request)."""
        keys = list(answers)
        lines = "".join(f"{method} {template}\t{json.dumps(answers[(method, template)])}\n" for method, template in keys)
        done = subprocess.run([*self.command, self.jar], input=lines, capture_output=True, text=True, timeout=120,
                              check=True)
        return dict(zip(keys, done.stdout.splitlines()))


def rest_shape_judge(folder: Path) -> RestShapeJudge:
    """Compiled into `folder`. Raises PyFlinkUnavailable without a JDK or Flink's distribution."""
    command = java_against_flink(_SOURCE, "RestShapes", folder)
    jar = command[2].split(":", 1)[0]
    return RestShapeJudge(command, jar)
