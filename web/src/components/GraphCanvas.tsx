// A cytoscape graph: nodes coloured by risk, start nodes ringed, edges labelled
// by port/protocol. Clicking a node reports it (the page offers pivots).

import { useEffect, useRef } from 'react';
import cytoscape, { type Core, type ElementDefinition } from 'cytoscape';

export interface GraphNode {
  id: string;
  label: string;
  host: string | null;
  ip: string;
  hops: number;
  risk: number;
  start: boolean;
  facts?: Record<string, number>;
}
export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  label: string;
}

export interface GraphCanvasProps {
  nodes: GraphNode[];
  edges: GraphEdge[];
  layout: 'concentric' | 'cose' | 'breadthfirst';
  onNodeClick: (n: GraphNode, pos: { x: number; y: number }) => void;
  onBackgroundClick?: () => void;
}

function riskColor(risk: number): string {
  if (risk >= 20) return '#ef4444';
  if (risk >= 10) return '#f97316';
  if (risk >= 3) return '#eab308';
  if (risk > 0) return '#84cc16';
  return '#4f9dff';
}

export function GraphCanvas({ nodes, edges, layout, onNodeClick, onBackgroundClick }: GraphCanvasProps) {
  const container = useRef<HTMLDivElement>(null);
  const handlers = useRef({ onNodeClick, onBackgroundClick });
  handlers.current = { onNodeClick, onBackgroundClick };

  useEffect(() => {
    if (!container.current) return undefined;
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const maxHops = Math.max(1, ...nodes.map((n) => n.hops));
    const elements: ElementDefinition[] = [
      ...nodes.map((n) => ({
        data: { id: n.id, label: n.label, color: riskColor(n.risk), size: 18 + Math.min(24, n.risk), hops: n.hops },
        classes: n.start ? 'start' : '',
      })),
      ...edges
        .filter((e) => byId.has(e.source) && byId.has(e.target))
        // Many edge labels are clutter: then they show on hover or selection only.
        .map((e) => ({ data: { id: e.id, source: e.source, target: e.target, label: e.label }, classes: edges.length <= 30 ? 'labelled' : '' })),
    ];
    const cy: Core = cytoscape({
      container: container.current,
      elements,
      wheelSensitivity: 0.3,
      minZoom: 0.1,
      maxZoom: 4,
      style: [
        {
          selector: 'node',
          style: {
            'background-color': 'data(color)',
            width: 'data(size)',
            height: 'data(size)',
            label: 'data(label)',
            color: '#d7dce4',
            'font-size': 10,
            'text-valign': 'bottom',
            'text-margin-y': 3,
            'text-outline-color': '#0f1318',
            'text-outline-width': 2,
          },
        },
        { selector: 'node.start', style: { 'border-width': 3, 'border-color': '#ffffff', shape: 'diamond' } },
        { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#4f9dff' } },
        {
          selector: 'edge',
          style: {
            width: 1.2,
            'line-color': '#4b5563',
            'target-arrow-color': '#4b5563',
            'target-arrow-shape': 'triangle',
            'arrow-scale': 0.8,
            'curve-style': 'bezier',
          },
        },
        { selector: 'edge.hover, edge:selected', style: { 'line-color': '#4f9dff', 'target-arrow-color': '#4f9dff', width: 2 } },
        {
          selector: 'edge.labelled, edge.hover, edge:selected',
          style: {
            label: 'data(label)',
            'font-size': 8,
            color: '#8b95a5',
            'text-rotation': 'autorotate',
            'text-background-color': '#0f1318',
            'text-background-opacity': 0.8,
            'text-background-padding': '1px',
          },
        },
      ],
      layout:
        layout === 'concentric'
          ? { name: 'concentric', concentric: (n: cytoscape.NodeSingular) => maxHops + 1 - Number(n.data('hops')), levelWidth: () => 1, minNodeSpacing: 24, animate: false }
          : layout === 'breadthfirst'
            ? { name: 'breadthfirst', directed: true, roots: nodes.filter((n) => n.start).map((n) => n.id), spacingFactor: 1.1, animate: false }
            : { name: 'cose', animate: false, nodeRepulsion: () => 8000, idealEdgeLength: () => 80 },
    });
    cy.on('tap', 'node', (evt) => {
      const n = byId.get(evt.target.id());
      if (n) handlers.current.onNodeClick(n, evt.target.renderedPosition());
    });
    cy.on('mouseover', 'edge', (evt) => evt.target.addClass('hover'));
    cy.on('mouseout', 'edge', (evt) => evt.target.removeClass('hover'));
    cy.on('mouseover', 'node', (evt) => evt.target.connectedEdges().addClass('hover'));
    cy.on('mouseout', 'node', (evt) => evt.target.connectedEdges().removeClass('hover'));
    cy.on('tap', (evt) => {
      if (evt.target === cy) handlers.current.onBackgroundClick?.();
    });
    // Tests (and the console) can find node positions here.
    (container.current as HTMLDivElement & { __cy?: Core }).__cy = cy;
    return () => cy.destroy();
  }, [nodes, edges, layout]);

  return <div className="graph-canvas" ref={container} data-testid="graph-canvas" />;
}
